//! The run's control topics on Redis pub/sub: the controller's word broadcast on a channel, and
//! requests (a node's report, a clock request) answered on the requester's own reply channel.
//!
//! Pub/sub because the topics are what pub/sub is: a broadcast every tick that a node joining
//! late takes at the next one, and request/reply where the requester waits a while and asks
//! again (a report is sent until answered and taken once by its sequence number; a clock
//! request is one of several). Nothing needs to wait in the server for a reader that is not
//! there, and `PUBLISH` says how many heard it, so a request nobody serves fails at once. The
//! clock requests' round trip is the same path both ways, which the clock estimate assumes.
//!
//! A request is `[u16 length of the reply channel][reply channel][u64 id][body]`, published on
//! `pooltune.NAME.report` (or `.clock`); its answer is `[u64 id][answer]` on the reply channel
//! (`pooltune.NAME.reply.ID`, one per process, subscribed before its first request).
//!
//! Each subscription has a connection of its own and is made again, with its channel, after an
//! outage: what was published meanwhile is missed (the next control word, a request sent again).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::Redis;
use super::conn::{CONNECT_TIMEOUT, Conn, Health};
use crate::engine::broker::adapter::{BoxFuture, BoxStream, Request, Topic};

/// Messages a subscription keeps for its reader.
const SUBSCRIPTION_BUFFER: usize = 1024;
const RESUBSCRIBE_STEP: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(1);

/// A subscription to `channel` that lasts through outages, until its stream is dropped.
pub async fn subscribe(
    client: &redis::Client,
    channel: String,
    health: Arc<Health>,
) -> Result<BoxStream<Vec<u8>>, String> {
    let first = open(client, &channel).await.map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
    tokio::spawn(follow(client.clone(), channel, health, first, tx));
    let messages = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    Ok(Box::pin(messages))
}

async fn open(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let subscribed = async {
        let mut ps = client.get_async_pubsub().await?;
        ps.subscribe(channel).await?;
        Ok(ps)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, subscribed)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer").into()))
}

/// Passes the channel's messages on; subscribes again when the connection is lost.
async fn follow(
    client: redis::Client,
    channel: String,
    health: Arc<Health>,
    first: redis::aio::PubSub,
    tx: mpsc::Sender<Vec<u8>>,
) {
    let mut ps = first;
    loop {
        let made = Instant::now();
        let mut messages = ps.into_on_message();
        loop {
            let m = tokio::select! {
                () = tx.closed() => return,
                m = messages.next() => m,
            };
            let Some(m) = m else { break };
            if tx.send(m.get_payload_bytes().to_vec()).await.is_err() {
                return;
            }
        }
        drop(messages);
        health.lost(made);
        let mut pause = RESUBSCRIBE_STEP;
        ps = loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(pause) => {}
            }
            match open(&client, &channel).await {
                Ok(ps) => break ps,
                Err(e) => tracing::debug!("subscribing to {channel} again: {e}"),
            }
            pause = (pause + RESUBSCRIBE_STEP).min(RESUBSCRIBE_MAX);
        };
        health.back();
    }
}

/// A process's reply channel and the requests waiting on it.
pub struct Replies {
    channel: String,
    next: AtomicU64,
    waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>>,
}

impl Replies {
    /// Subscribes to a reply channel of this process's own and routes its answers.
    pub async fn start(r: &Redis) -> Result<Replies, String> {
        let channel = format!("pooltune.{}.reply.{}", r.spec.run_name, r.consumer);
        let mut answers = subscribe(&r.client, channel.clone(), Arc::clone(&r.health)).await?;
        let waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>> = Arc::default();
        let routes = Arc::clone(&waiting);
        tokio::spawn(async move {
            while let Some(m) = answers.next().await {
                let Some((id, body)) = m.split_first_chunk::<8>() else { continue };
                let waiter = routes.lock().unwrap_or_else(PoisonError::into_inner).remove(&u64::from_be_bytes(*id));
                if let Some(w) = waiter {
                    let _ = w.send(body.to_vec());
                }
            }
        });
        Ok(Replies { channel, next: AtomicU64::new(1), waiting })
    }

    fn forget(&self, id: u64) {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }
}

/// Sends a request on `topic` and waits up to `wait` for its answer.
pub async fn request(r: &Redis, topic: Topic, body: Vec<u8>, wait: Duration) -> Result<Vec<u8>, String> {
    let replies = r.replies.get_or_try_init(|| Replies::start(r)).await?;
    let id = replies.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    replies.waiting.lock().unwrap_or_else(PoisonError::into_inner).insert(id, tx);
    let channel = topic.name(&r.spec.run_name);
    let heard: Result<i64, String> = r
        .cmd
        .query(redis::cmd("PUBLISH").arg(&channel).arg(envelope(&replies.channel, id, &body)))
        .await
        .map_err(|e| e.to_string());
    match heard {
        Ok(0) => {
            replies.forget(id);
            return Err(format!("no one serves {channel}"));
        }
        Err(e) => {
            replies.forget(id);
            return Err(e);
        }
        Ok(_) => {}
    }
    if let Ok(Ok(answer)) = tokio::time::timeout(wait, rx).await {
        Ok(answer)
    } else {
        replies.forget(id);
        Err(format!("no answer within {wait:?}"))
    }
}

/// The requests on `topic`, each with the way to answer it.
pub async fn serve(r: &Redis, topic: Topic) -> Result<BoxStream<Request>, String> {
    let messages = subscribe(&r.client, topic.name(&r.spec.run_name), Arc::clone(&r.health)).await?;
    let conn = Arc::clone(&r.cmd);
    let requests = messages.filter_map(move |m| {
        let conn = Arc::clone(&conn);
        std::future::ready(opened(&m).map(|(to, id, body)| Request { body, reply: answer(conn, to, id) }))
    });
    Ok(Box::pin(requests))
}

fn answer(conn: Arc<Conn>, to: String, id: u64) -> Box<dyn FnOnce(Vec<u8>) -> BoxFuture<'static, ()> + Send> {
    Box::new(move |body: Vec<u8>| -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut m = id.to_be_bytes().to_vec();
            m.extend_from_slice(&body);
            if let Err(e) = conn.query::<i64>(redis::cmd("PUBLISH").arg(&to).arg(m)).await {
                tracing::debug!("an answer not sent: {e}");
            }
        })
    })
}

/// A request: its reply channel, id and body.
fn envelope(reply: &str, id: u64, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(reply.len()).unwrap_or(u16::MAX);
    let mut m = Vec::with_capacity(2 + reply.len() + 8 + body.len());
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&reply.as_bytes()[..usize::from(len)]);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// [`envelope`]'s parts, or `None` for a message that is not one.
fn opened(m: &[u8]) -> Option<(String, u64, Vec<u8>)> {
    let (len, rest) = m.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (to, rest) = rest.split_at_checked(len)?;
    let (id, body) = rest.split_first_chunk::<8>()?;
    Some((String::from_utf8(to.to_vec()).ok()?, u64::from_be_bytes(*id), body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_envelope_opens_to_what_was_put_in() {
        let m = envelope("pooltune.r.reply.c-1", 42, b"body");
        assert_eq!(opened(&m), Some(("pooltune.r.reply.c-1".into(), 42, b"body".to_vec())));
        assert_eq!(opened(&envelope("x", 7, b"")), Some(("x".into(), 7, Vec::new())));
        for bad in [&b""[..], &[0, 9, b'x'][..], &m[..m.len() - 4 - 8 + 3]] {
            assert_eq!(opened(bad), None, "{bad:?}");
        }
    }
}
