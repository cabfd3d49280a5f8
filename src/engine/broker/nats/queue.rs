//! The run's stream and consumer on NATS: their configuration from the knobs, a delivered
//! message, knob changes, a stream the server lost, and the end's reading of what is left.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::stream::{self as js_stream, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{AckKind, ErrorCode};
use futures_util::StreamExt;

use super::{CONSUMER, Nats};
use crate::engine::broker::adapter::{Ack, BoxFuture, Delivery};
use crate::engine::broker::state::Cfg;
use crate::settings::Policy;

/// Messages asked for per fetch when the end reads what is left.
const LEFTOVER_FETCH: usize = 1000;

pub fn stream_config(name: &str, subject: &str, c: Cfg) -> js_stream::Config {
    js_stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::Memory,
        max_messages: i64::try_from(c.bound).unwrap_or(i64::MAX),
        discard: if c.policy == Policy::DropOldest { DiscardPolicy::Old } else { DiscardPolicy::New },
        num_replicas: 1,
        ..Default::default()
    }
}

pub fn consumer_config(c: Cfg) -> pull::Config {
    pull::Config {
        durable_name: Some(CONSUMER.to_string()),
        ack_policy: AckPolicy::Explicit,
        ack_wait: c.ack_wait,
        max_ack_pending: i64::try_from(c.bound).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

/// Whether a publish was refused because the stream is full (discard `new`).
pub fn is_full(e: &PublishError) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .is_some_and(|j| j.error_code() == ErrorCode::STREAM_STORE_FAILED)
}

/// A JetStream message's acknowledgement.
struct NatsAck(jetstream::Message);

impl Ack for NatsAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move { self.0.ack().await.map_err(|e| e.to_string()) })
    }

    fn discard(self: Box<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move { self.0.ack_with(AckKind::Term).await.map_err(|e| e.to_string()) })
    }
}

/// A delivered message, its stream sequence counted from the run's first (`seq0` before it).
pub fn delivery(m: jetstream::Message, seq0: u64) -> Delivery {
    let (seq, delivered) = match m.info() {
        Ok(i) => (Some(i.stream_sequence.saturating_sub(seq0)).filter(|&s| s > 0), i.delivered),
        Err(_) => (None, 1),
    };
    Delivery { payload: m.payload.to_vec(), redelivered: delivered > 1, seq, ack: Box::new(NatsAck(m)) }
}

/// Applies changed knobs to the stream (bound, policy) and the consumer (bound, `ack_wait`).
pub async fn apply(n: &Nats, was: Cfg, c: Cfg) -> Result<(), String> {
    if (c.bound, c.policy) != (was.bound, was.policy) {
        n.js.update_stream(stream_config(&n.stream(), &n.subject(), c))
            .await
            .map_err(|e| format!("stream {}: could not apply bound {} / {}: {e}", n.stream(), c.bound, c.policy))?;
    }
    if (c.bound, c.ack_wait) != (was.bound, was.ack_wait) {
        let stream = n.js.get_stream(n.stream()).await.map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(consumer_config(c))
            .await
            .map_err(|e| format!("consumer {CONSUMER}: could not apply ack_wait/bound: {e}"))?;
        *n.consumer.write().await = Some(consumer);
    }
    Ok(())
}

/// A server restarted with memory storage has lost the run's stream and consumer: both are made
/// again (`Ok(true)`). A consumer gone on its own is made again too. Anything else (the server
/// still starting JetStream) waits for the next reading.
pub async fn recover(n: &Nats, cfg: Cfg) -> Result<bool, String> {
    use async_nats::jetstream::context::GetStreamErrorKind;
    let name = n.stream();
    let mut lost = false;
    let stream = match n.js.get_stream(&name).await {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            let s =
                n.js.create_stream(stream_config(&name, &n.subject(), cfg))
                    .await
                    .map_err(|e| format!("stream {name} is gone and could not be made again: {e}"))?;
            tracing::warn!("stream {name} was gone with the server's memory: made again");
            // A stream made again numbers its messages from 1.
            n.seq0.store(0, std::sync::atomic::Ordering::Relaxed);
            lost = true;
            s
        }
        Err(e) => return Err(e.to_string()),
    };
    if stream.get_consumer::<pull::Config>(CONSUMER).await.is_err() {
        let consumer = stream
            .create_consumer(consumer_config(cfg))
            .await
            .map_err(|e| format!("consumer {CONSUMER} of {name} could not be made again: {e}"))?;
        tracing::warn!("consumer {CONSUMER} of {name} was gone: made again");
        *n.consumer.write().await = Some(consumer);
    }
    Ok(lost)
}

/// Every message the stream holds: the run's consumer is deleted (what it held unacknowledged
/// becomes deliverable again) and a consumer of its own reads them all.
pub async fn leftovers(n: &Nats) -> Result<Vec<Vec<u8>>, String> {
    let name = n.stream();
    let mut stream = n.js.get_stream(&name).await.map_err(|e| e.to_string())?;
    let messages = stream.info().await.map_err(|e| e.to_string())?.state.messages;
    if messages == 0 {
        return Ok(Vec::new());
    }
    stream.delete_consumer(CONSUMER).await.map_err(|e| format!("deleting consumer {CONSUMER}: {e}"))?;
    let config = pull::Config {
        name: Some("leftovers".to_string()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(60),
        max_ack_pending: i64::try_from(messages + 1).unwrap_or(i64::MAX),
        ..Default::default()
    };
    let consumer: PullConsumer = stream.create_consumer(config).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while (out.len() as u64) < messages {
        let mut batch = consumer
            .fetch()
            .max_messages(LEFTOVER_FETCH)
            .expires(Duration::from_millis(200))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let before = out.len();
        while let Some(m) = batch.next().await {
            out.push(m.map_err(|e| e.to_string())?.payload.to_vec());
        }
        if out.len() == before {
            break;
        }
    }
    if (out.len() as u64) < messages {
        tracing::warn!("stream {name}: {} of its {messages} messages could be read at the end", out.len());
    }
    Ok(out)
}
