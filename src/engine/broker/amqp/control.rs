//! The run's control words, reports and clock requests on RabbitMQ.
//!
//! - [`Topic::Control`]: a fanout exchange; each subscriber binds an exclusive queue of its own
//!   (named by the server, gone with its connection), so a node that joins late takes the next
//!   word.
//! - [`Topic::Report`], [`Topic::Clock`]: the controller consumes an exclusive queue of the
//!   topic's name; a request is published to it with `reply_to` = `amq.rabbitmq.reply-to`
//!   (RabbitMQ's direct reply-to: no reply queue is made) and a correlation id, and its answer
//!   comes back on the requesting channel. A request also carries, in its headers, how many
//!   jobs the requesting process holds unacknowledged (see the module doc of `amqp`).
//!
//! Every consumer here is made again after a reconnection; a stream handed to the core goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery as Message;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Consumer, ExchangeKind};
use tokio::sync::{mpsc, oneshot};

use super::Amqp;
use super::session::Session;
use crate::engine::broker::adapter::{BoxFuture, BoxStream, Request, Topic};

const DIRECT_REPLY: &str = "amq.rabbitmq.reply-to";
const FROM: &str = "x-pooltune-from";
const UNACKED: &str = "x-pooltune-unacked";
/// Messages a subscription or a server keeps for the core before it waits.
const BUFFER: usize = 256;

fn no_ack() -> BasicConsumeOptions {
    BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() }
}

async fn fanout(ch: &Channel, name: &str) -> Result<(), String> {
    ch.exchange_declare(name.into(), ExchangeKind::Fanout, ExchangeDeclareOptions::default(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())
}

pub async fn broadcast(a: &Amqp, topic: Topic, body: Vec<u8>) -> Result<(), String> {
    let s = a.session()?;
    let ch = s.replies().await?;
    let name = topic.name(&a.spec.run_name);
    if topic != Topic::Control {
        fanout(&ch, &name).await?;
    }
    ch.basic_publish(name.into(), "".into(), BasicPublishOptions::default(), &body, BasicProperties::default())
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// An exclusive queue of this subscriber's own, bound to the topic's exchange.
async fn bind(a: &Amqp, s: &Session, topic: Topic) -> Result<Consumer, String> {
    let ch = s.conn.create_channel().await.map_err(|e| e.to_string())?;
    let name = topic.name(&a.spec.run_name);
    fanout(&ch, &name).await?;
    let q = ch
        .queue_declare("".into(), QueueDeclareOptions::exclusive().auto_delete(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    ch.queue_bind(q.name().clone(), name.into(), "".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    ch.basic_consume(q.name().clone(), "".into(), no_ack(), FieldTable::default()).await.map_err(|e| e.to_string())
}

/// The controller's queue for a request topic.
async fn listen(a: &Amqp, s: &Session, topic: Topic) -> Result<Consumer, String> {
    let ch = s.conn.create_channel().await.map_err(|e| e.to_string())?;
    let name: ShortString = topic.name(&a.spec.run_name).into();
    ch.queue_declare(name.clone(), QueueDeclareOptions::exclusive(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    ch.basic_consume(name, "".into(), no_ack(), FieldTable::default()).await.map_err(|e| e.to_string())
}

type Setup = fn(Arc<Amqp>, Topic) -> BoxFuture<'static, Result<Consumer, String>>;

fn bound(a: Arc<Amqp>, t: Topic) -> BoxFuture<'static, Result<Consumer, String>> {
    Box::pin(async move { bind(&a, &*a.session()?, t).await })
}

fn listening(a: Arc<Amqp>, t: Topic) -> BoxFuture<'static, Result<Consumer, String>> {
    Box::pin(async move { listen(&a, &*a.session()?, t).await })
}

/// Forwards a consumer's messages to `tx`, consuming again once a connection is back, until
/// the core drops the stream or the adapter is gone.
async fn follow<T: Send + 'static>(
    me: Weak<Amqp>,
    topic: Topic,
    setup: Setup,
    mut consumer: Consumer,
    tx: mpsc::Sender<T>,
    each: impl Fn(&Amqp, Message) -> T + Send + 'static,
) {
    loop {
        while let Some(Ok(m)) = consumer.next().await {
            let Some(a) = me.upgrade() else { return };
            if tx.send(each(&a, m)).await.is_err() {
                return;
            }
        }
        // The channel or the connection is gone: consume again on the next one.
        consumer = loop {
            if tx.is_closed() {
                return;
            }
            let Some(a) = me.upgrade() else { return };
            let mut changed = a.session.subscribe();
            match setup(Arc::clone(&a), topic).await {
                Ok(c) => break c,
                Err(e) => tracing::debug!("{}: could not consume again: {e}", topic.name(&a.spec.run_name)),
            }
            drop(a);
            let _ = tokio::time::timeout(Duration::from_millis(500), changed.changed()).await;
        };
    }
}

pub async fn subscribe(a: &Amqp, topic: Topic) -> Result<BoxStream<Vec<u8>>, String> {
    let consumer = bind(a, &*a.session()?, topic).await?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(follow(a.me.clone(), topic, bound, consumer, tx, |_: &Amqp, m: Message| m.data));
    Ok(Box::pin(receiver(rx)))
}

pub async fn serve(a: &Amqp, topic: Topic) -> Result<BoxStream<Request>, String> {
    let consumer = listen(a, &*a.session()?, topic).await?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(follow(a.me.clone(), topic, listening, consumer, tx, request_of));
    Ok(Box::pin(receiver(rx)))
}

/// A request as the core takes it; the requester's unacknowledged count noted.
fn request_of(a: &Amqp, m: Message) -> Request {
    let headers = m.properties.headers().clone().unwrap_or_default();
    let field = |k: &str| headers.inner().iter().find(|(key, _)| key.as_str() == k).map(|(_, v)| v.clone());
    if let (Some(AMQPValue::LongString(from)), Some(AMQPValue::LongLongInt(n))) = (field(FROM), field(UNACKED)) {
        let n = u64::try_from(n).unwrap_or(0);
        a.nodes.lock().unwrap_or_else(PoisonError::into_inner).insert(from.to_string(), (n, Instant::now()));
    }
    let to = m.properties.reply_to().clone();
    let id = m.properties.correlation_id().clone();
    let me = a.me.clone();
    Request {
        body: m.data,
        reply: Box::new(move |answer: Vec<u8>| -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let (Some(to), Some(a)) = (to, me.upgrade()) else { return };
                let props = BasicProperties::default().with_correlation_id(id.unwrap_or_else(|| "".into()));
                let Ok(s) = a.session() else { return };
                if let Ok(ch) = s.replies().await {
                    let _ = ch.basic_publish("".into(), to, BasicPublishOptions::default(), &answer, props).await;
                }
            })
        }),
    }
}

/// A requesting channel: its direct reply-to consumer and the requests waiting for answers.
pub struct Rpc {
    epoch: u64,
    channel: Channel,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>>,
    next: AtomicU64,
}

async fn rpc(a: &Amqp) -> Result<Arc<Rpc>, String> {
    let s = a.session()?;
    let mut slot = a.rpc.lock().await;
    if let Some(r) = slot.as_ref().filter(|r| r.epoch == s.epoch && r.channel.status().connected()) {
        return Ok(Arc::clone(r));
    }
    let channel = s.conn.create_channel().await.map_err(|e| e.to_string())?;
    let mut answers = channel
        .basic_consume(DIRECT_REPLY.into(), "".into(), no_ack(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    let waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>> = Arc::default();
    let w = Arc::clone(&waiting);
    tokio::spawn(async move {
        while let Some(Ok(m)) = answers.next().await {
            let id = m.properties.correlation_id().as_ref().map(ToString::to_string).unwrap_or_default();
            if let Some(tx) = w.lock().unwrap_or_else(PoisonError::into_inner).remove(&id) {
                let _ = tx.send(m.data);
            }
        }
    });
    let r = Arc::new(Rpc { epoch: s.epoch, channel, waiting, next: AtomicU64::new(0) });
    *slot = Some(Arc::clone(&r));
    Ok(r)
}

pub async fn request(a: &Amqp, topic: Topic, body: Vec<u8>, wait: Duration) -> Result<Vec<u8>, String> {
    let r = rpc(a).await?;
    let id = r.next.fetch_add(1, Ordering::Relaxed).to_string();
    let (tx, rx) = oneshot::channel();
    r.waiting.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), tx);
    let mut headers = FieldTable::default();
    headers.insert(FROM.into(), AMQPValue::LongString(a.instance.as_str().into()));
    headers.insert(UNACKED.into(), AMQPValue::LongLongInt(i64::try_from(a.own_unacked()).unwrap_or(i64::MAX)));
    let props = BasicProperties::default()
        .with_reply_to(DIRECT_REPLY.into())
        .with_correlation_id(id.clone().into())
        .with_headers(headers);
    let to: ShortString = topic.name(&a.spec.run_name).into();
    let sent = r.channel.basic_publish("".into(), to, BasicPublishOptions::default(), &body, props).await;
    let answer = match sent {
        Err(e) => Err(e.to_string()),
        Ok(_) => match tokio::time::timeout(wait, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("the reply channel closed".to_string()),
            Err(_) => Err(format!("no answer within {wait:?}")),
        },
    };
    r.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    answer
}

/// An mpsc receiver as a stream.
fn receiver<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
