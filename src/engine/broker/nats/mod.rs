//! NATS JetStream behind the [`Adapter`] seam (scheme `nats://`, `tls://`).
//!
//! A run named `NAME` owns:
//! - the stream `POOLTUNE_NAME` on the subject `pooltune.NAME.jobs`, work-queue retention (a job
//!   leaves the stream when a worker acknowledges it), memory storage, `max_msgs` = the queue
//!   bound, discard `new` for the `block` and `reject` policies and `old` for `drop-oldest`;
//! - one durable pull consumer, `workers`, explicit acks, `ack_wait` from its knob and
//!   `max_ack_pending` = the queue bound;
//! - the core NATS subjects of its [`Topic`]s (`pooltune.NAME.control`, `.report`, `.clock`),
//!   requests and replies by NATS' own inboxes.
//!
//! **The bound counts what the stream holds**: jobs waiting, prefetched by a node, and in
//! service until acknowledged. A stream full under discard `new` refuses a publish with
//! `STREAM_STORE_FAILED` ([`Published::Full`]). Drops under discard `old` show as jumps in the
//! stream sequence of first deliveries ([`Delivery::seq`]), and at the end as the stream's
//! count of stored messages less those delivered and still waiting.
//!
//! The client is async-nats without its `server_2_10`+ features, so it asks only what servers
//! from 2.9 on understand (its typed account info, which 2.9's answer does not fit, is not
//! used). The tests run against the server `.ci/run` installs (2.15); they pass against
//! Debian's 2.9.10 too.

mod connect;
mod queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::PullConsumer;
use futures_util::StreamExt;
use tokio::sync::RwLock;

use super::adapter::{Adapter, BoxFuture, BoxStream, Confirm, Delivery, Holding, Published, Request, Topic};
use super::link::Link;
use super::state::Cfg;
use super::{BrokerError, BrokerSpec};

pub use connect::connect;

/// The durable consumer every node of a run pulls from.
pub const CONSUMER: &str = "workers";

/// How long a JetStream request (stream or consumer info, changes) waits for its answer.
const JS_TIMEOUT: Duration = Duration::from_secs(2);

/// NATS JetStream: a client, the run's stream and its consumer.
pub struct Nats {
    spec: BrokerSpec,
    client: async_nats::Client,
    js: jetstream::Context,
    link: Arc<Link>,
    /// The run's consumer, once made or opened (made again after a server lost it).
    consumer: RwLock<Option<PullConsumer>>,
    /// The stream's last sequence before this run's first job (0 for a stream made again).
    seq0: AtomicU64,
}

impl Nats {
    /// The run's stream.
    fn stream(&self) -> String {
        format!("POOLTUNE_{}", self.spec.run_name)
    }

    /// The subject the run's jobs are published on.
    fn subject(&self) -> String {
        format!("pooltune.{}.jobs", self.spec.run_name)
    }

    async fn consumer(&self) -> Result<PullConsumer, String> {
        self.consumer.read().await.clone().ok_or_else(|| "the run's consumer is not open".to_string())
    }

    fn setup_error(&self, what: &str, e: &dyn std::fmt::Display) -> BrokerError {
        BrokerError::Setup { url: self.spec.shown(), what: what.to_string(), reason: e.to_string() }
    }
}

impl Adapter for Nats {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn holder(&self) -> &'static str {
        "stream"
    }

    fn names(&self) -> (String, String) {
        (self.stream(), CONSUMER.to_string())
    }

    fn link(&self) -> &Arc<Link> {
        &self.link
    }

    fn create(&self, cfg: Cfg) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let what = format!("stream {}", self.stream());
            let config = queue::stream_config(&self.stream(), &self.subject(), cfg);
            let stream = self.js.get_or_create_stream(config.clone()).await.map_err(|e| self.setup_error(&what, &e))?;
            self.js.update_stream(config).await.map_err(|e| self.setup_error(&what, &e))?;
            let purged = stream.purge().await.map_err(|e| self.setup_error(&what, &e))?.purged;
            if purged > 0 {
                tracing::info!("stream {}: purged {purged} jobs an earlier run of this name left", self.stream());
            }
            let _ = stream.delete_consumer(CONSUMER).await;
            let consumer: PullConsumer = stream
                .create_consumer(queue::consumer_config(cfg))
                .await
                .map_err(|e| self.setup_error("consumer workers", &e))?;
            let mut stream = stream;
            let seq0 = stream.info().await.map_err(|e| self.setup_error(&what, &e))?.state.last_sequence;
            self.seq0.store(seq0, Ordering::Relaxed);
            *self.consumer.write().await = Some(consumer);
            Ok(())
        })
    }

    fn open(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let stream = self.js.get_stream(self.stream()).await.map_err(|e| self.setup_error("stream", &e))?;
            let consumer: PullConsumer =
                stream.get_consumer(CONSUMER).await.map_err(|e| self.setup_error("consumer", &e))?;
            *self.consumer.write().await = Some(consumer);
            Ok(())
        })
    }

    fn apply(&self, was: Cfg, now: Cfg) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(queue::apply(self, was, now))
    }

    fn publish(&self, payload: Vec<u8>, _cfg: Cfg) -> BoxFuture<'_, Result<Confirm, String>> {
        Box::pin(async move {
            let ack = self.js.publish(self.subject(), payload.into()).await.map_err(|e| e.to_string())?;
            let confirm: Confirm = Box::pin(async move {
                match ack.into_future().await {
                    Ok(_) => Published::Stored { dropped: 0 },
                    Err(e) if queue::is_full(&e) => Published::Full,
                    Err(e) => Published::Failed(e.to_string()),
                }
            });
            Ok(confirm)
        })
    }

    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<BoxStream<Delivery>, String>> {
        Box::pin(async move {
            let consumer = self.consumer().await?;
            let batch = consumer.batch().max_messages(max).expires(wait).messages().await.map_err(|e| e.to_string())?;
            let seq0 = self.seq0.load(Ordering::Relaxed);
            let deliveries = batch
                .take_while(|m| {
                    if let Err(e) = m {
                        tracing::debug!("pull request ended: {e}");
                    }
                    std::future::ready(m.is_ok())
                })
                .filter_map(move |m| std::future::ready(m.ok().map(|m| queue::delivery(m, seq0))));
            Ok(Box::pin(deliveries) as BoxStream<Delivery>)
        })
    }

    fn holding(&self) -> BoxFuture<'_, Result<Holding, String>> {
        Box::pin(async move {
            let mut consumer = self.consumer().await?;
            let info = consumer.info().await.map_err(|e| e.to_string())?;
            Ok(Holding { undelivered: info.num_pending, unacked: info.num_ack_pending as u64 })
        })
    }

    fn recover(&self, cfg: Cfg) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(queue::recover(self, cfg))
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.client.flush().await.map_err(|e| e.to_string()) })
    }

    fn dropped(&self, delivered: u64, undelivered: u64) -> BoxFuture<'_, Result<Option<u64>, String>> {
        Box::pin(async move {
            let mut stream = self.js.get_stream(self.stream()).await.map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            let stored = info.state.last_sequence.saturating_sub(self.seq0.load(Ordering::Relaxed));
            Ok(Some(stored.saturating_sub(delivered).saturating_sub(undelivered)))
        })
    }

    fn leftovers(&self) -> BoxFuture<'_, Result<Vec<Vec<u8>>, String>> {
        Box::pin(queue::leftovers(self))
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.js.delete_stream(self.stream()).await.map(drop).map_err(|e| e.to_string()) })
    }

    fn broadcast(&self, topic: Topic, body: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        let subject = topic.name(&self.spec.run_name);
        Box::pin(async move { self.client.publish(subject, body.into()).await.map_err(|e| e.to_string()) })
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Vec<u8>>, String>> {
        let subject = topic.name(&self.spec.run_name);
        Box::pin(async move {
            let sub = self.client.subscribe(subject).await.map_err(|e| e.to_string())?;
            Ok(Box::pin(sub.map(|m| m.payload.to_vec())) as BoxStream<Vec<u8>>)
        })
    }

    fn request(&self, topic: Topic, body: Vec<u8>, wait: Duration) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        let subject = topic.name(&self.spec.run_name);
        Box::pin(async move {
            match tokio::time::timeout(wait, self.client.request(subject, body.into())).await {
                Ok(Ok(m)) => Ok(m.payload.to_vec()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {wait:?}")),
            }
        })
    }

    fn serve(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Request>, String>> {
        let subject = topic.name(&self.spec.run_name);
        let client = self.client.clone();
        Box::pin(async move {
            let sub = self.client.subscribe(subject).await.map_err(|e| e.to_string())?;
            let requests = sub.map(move |m| {
                let client = client.clone();
                let to = m.reply;
                Request {
                    body: m.payload.to_vec(),
                    reply: Box::new(move |answer: Vec<u8>| -> BoxFuture<'static, ()> {
                        Box::pin(async move {
                            if let Some(to) = to {
                                let _ = client.publish(to, answer.into()).await;
                            }
                        })
                    }),
                }
            });
            Ok(Box::pin(requests) as BoxStream<Request>)
        })
    }
}
