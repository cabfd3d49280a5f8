//! Redis Streams behind the [`Adapter`] seam (scheme `redis://`, `rediss://`), through redis-rs.
//!
//! A run named `NAME` owns:
//! - the stream `pooltune:NAME:jobs`, one entry per job (its message in the field `j`), and one
//!   consumer group on it, `workers`; every process reads as a consumer of its own
//!   (`XREADGROUP GROUP workers CONSUMER … COUNT n BLOCK 100 STREAMS pooltune:NAME:jobs >`, `n` the
//!   room in its inbox: the `prefetch` knob);
//! - the hash `pooltune:NAME:meta`: the run's `ack_wait_ms` (written by the controller, read by
//!   every consumer's claims), and the server's own totals of entries `claimed` and `trimmed`
//!   (kept by the scripts, read with each reading of the stream: [`Adapter::stats`]);
//! - the pub/sub channels of its [`Topic`]s (`pooltune.NAME.control`, `.report`, `.clock`) and a
//!   reply channel per process (see `topics.rs`).
//!
//! **The bound counts what the stream holds**: a job's entry is deleted when its job is
//! acknowledged (`XACK` and `XDEL` in one `MULTI`), so the stream holds exactly the jobs waiting
//! and those delivered (prefetched or in service) and not yet acknowledged, which is
//! what [`holding`](Adapter::holding) reads: `XLEN` less the group's pending count, and that
//! count. Every publish runs a Lua script (`scripts.rs`) that checks the bound atomically:
//! under `reject` and `block` a stream at its bound stores nothing ([`Published::Full`]); under
//! `drop-oldest` the job is stored and the oldest entries the group has not delivered are deleted
//! down to the bound, and their number returned ([`Published::Stored`]'s `dropped`: exact, so
//! [`Adapter::dropped`] has nothing to add). `XADD`'s own `MAXLEN` trimming is not used: it
//! trims the oldest entries whether delivered or not, and says nothing of how many.
//!
//! **`ack_wait`** is the idle time after which a consumer's unacknowledged entries are handed to
//! another: every consumer's fetch first runs `XAUTOCLAIM` with it (at most every 100 ms), and
//! delivers what it claims as redelivered. Redis redelivers nothing by itself: a killed node's
//! jobs wait in the group's pending list until a live consumer claims them.
//!
//! A server restarted without persistence has lost the stream, its group and the hash: a publish
//! finds the stream gone and stores nothing (the script never makes it), the controller's next
//! reading fails, and [`recover`](Adapter::recover) makes all three again.

mod conn;
mod connect;
mod queue;
mod scripts;
mod topics;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OnceCell, mpsc, oneshot};

use super::BrokerSpec;
use super::adapter::{Adapter, BoxFuture, BoxStream, Confirm, Delivery, Holding, Published, Request, Topic};
use super::link::Link;
use super::state::Cfg;
use crate::settings::Policy;

pub use connect::connect;

/// The consumer group every process of a run reads in.
pub const GROUP: &str = "workers";

/// The run's stream.
fn key(run: &str) -> String {
    format!("pooltune:{run}:jobs")
}

/// The run's hash: `ack_wait_ms` (the controller's), and the server's `claimed` and `trimmed`
/// totals (the scripts').
fn meta(run: &str) -> String {
    format!("pooltune:{run}:meta")
}

/// Redis: connections, the publisher and acknowledger tasks' queues, and this consumer's state.
pub struct Redis {
    spec: BrokerSpec,
    client: redis::Client,
    health: Arc<conn::Health>,
    /// Commands: publishes, acknowledgements, readings, control words.
    cmd: Arc<conn::Conn>,
    /// Reads: the blocking `XREADGROUP` holds its connection, so it has one of its own.
    reads: Arc<conn::Conn>,
    /// This process's consumer in the group.
    consumer: String,
    publish: mpsc::Sender<queue::Pub>,
    acks: mpsc::UnboundedSender<queue::AckMsg>,
    claims: Mutex<queue::Claims>,
    /// The server's totals, as the controller's last reading had them.
    totals: Mutex<queue::Totals>,
    replies: OnceCell<topics::Replies>,
}

impl Redis {
    fn key(&self) -> String {
        key(&self.spec.run_name)
    }

    fn meta(&self) -> String {
        meta(&self.spec.run_name)
    }

    fn setup_error(&self, what: &str, e: &dyn std::fmt::Display) -> super::BrokerError {
        super::BrokerError::Setup {
            url: self.spec.shown(),
            what: what.to_string(),
            reason: self.spec.scrub(&e.to_string()),
        }
    }

    /// Makes the stream and its group if they are not there; `true` if they were not.
    async fn make(&self, cfg: Cfg) -> Result<bool, redis::RedisError> {
        let made = match self
            .cmd
            .query::<()>(redis::cmd("XGROUP").arg("CREATE").arg(self.key()).arg(GROUP).arg("0").arg("MKSTREAM"))
            .await
        {
            Ok(()) => true,
            Err(e) if e.code() == Some("BUSYGROUP") => false,
            Err(e) => return Err(e),
        };
        self.write_meta(cfg).await?;
        Ok(made)
    }

    async fn write_meta(&self, cfg: Cfg) -> Result<(), redis::RedisError> {
        let ms = u64::try_from(cfg.ack_wait.as_millis()).unwrap_or(u64::MAX);
        self.cmd.query(redis::cmd("HSET").arg(self.meta()).arg("ack_wait_ms").arg(ms)).await
    }
}

impl Adapter for Redis {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn holder(&self) -> &'static str {
        "stream"
    }

    fn names(&self) -> (String, String) {
        (self.key(), GROUP.to_string())
    }

    /// `claimed`: entries `XAUTOCLAIM` handed from one consumer to another (past `ack_wait`),
    /// counted by the server whoever claimed them, so a node that died before reporting its
    /// claims is in it too (the core's `redelivered` is what the nodes reported). `trimmed`:
    /// entries `drop-oldest` deleted undelivered, counted by the server (the core's `dropped`
    /// is what the publishes' answers said; they differ only if an answer was lost).
    fn stats(&self) -> Vec<(&'static str, u64)> {
        let (claimed, trimmed) = self.totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get();
        vec![("claimed", claimed), ("trimmed", trimmed)]
    }

    fn link(&self) -> &Arc<Link> {
        &self.health.link
    }

    fn create(&self, cfg: Cfg) -> BoxFuture<'_, Result<(), super::BrokerError>> {
        Box::pin(async move {
            let what = format!("stream {}", self.key());
            let left: u64 =
                self.cmd.query(redis::cmd("XLEN").arg(self.key())).await.map_err(|e| self.setup_error(&what, &e))?;
            self.cmd
                .query::<()>(redis::cmd("DEL").arg(self.key()).arg(self.meta()))
                .await
                .map_err(|e| self.setup_error(&what, &e))?;
            if left > 0 {
                tracing::info!("stream {}: deleted {left} jobs an earlier run of this name left", self.key());
            }
            self.make(cfg).await.map(drop).map_err(|e| self.setup_error(&what, &e))
        })
    }

    fn open(&self) -> BoxFuture<'_, Result<(), super::BrokerError>> {
        Box::pin(async move {
            queue::holding(self).await.map(drop).map_err(|e| self.setup_error(&format!("stream {}", self.key()), &e))
        })
    }

    fn apply(&self, was: Cfg, now: Cfg) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // The bound and the policy go with every publish; the nodes' claims read `ack_wait`.
            if was.ack_wait == now.ack_wait {
                return Ok(());
            }
            self.write_meta(now).await.map_err(|e| format!("ack_wait not changed on the server: {e}"))
        })
    }

    fn publish(&self, payload: Vec<u8>, cfg: Cfg) -> BoxFuture<'_, Result<Confirm, String>> {
        let drop_oldest = cfg.policy == Policy::DropOldest;
        Box::pin(async move {
            if cfg.policy == Policy::Block {
                // The core waits for each answer under `block`: one publish in flight, sent
                // straight from here (the batching task's hand-off would add to every round trip).
                let (conn, keys) = (Arc::clone(&self.cmd), [self.key(), self.meta()]);
                return Ok(Box::pin(async move { queue::publish_one(&conn, &keys, &payload, cfg.bound, false).await })
                    as Confirm);
            }
            let (answer, confirmed) = oneshot::channel();
            let p = queue::Pub { payload, bound: cfg.bound, drop_oldest, answer };
            self.publish.send(p).await.map_err(|_| "the publisher has stopped".to_string())?;
            let confirm: Confirm = Box::pin(async move {
                confirmed.await.unwrap_or_else(|_| Published::Failed("the publisher has stopped".into()))
            });
            Ok(confirm)
        })
    }

    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<BoxStream<Delivery>, String>> {
        Box::pin(async move {
            let got = queue::fetch(self, max, wait).await?;
            Ok(Box::pin(futures_util::stream::iter(got)) as BoxStream<Delivery>)
        })
    }

    fn holding(&self) -> BoxFuture<'_, Result<Holding, String>> {
        Box::pin(queue::holding(self))
    }

    fn recover(&self, cfg: Cfg) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            let made = self.make(cfg).await.map_err(|e| format!("stream {}: {e}", self.key()))?;
            if made {
                tracing::warn!("stream {} was gone with the server's memory: made again", self.key());
            }
            Ok(made)
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let (done, flushed) = oneshot::channel();
            self.acks.send(queue::AckMsg::Flush(done)).map_err(|_| "the acknowledger has stopped".to_string())?;
            flushed.await.map_err(|_| "the acknowledger has stopped".to_string())
        })
    }

    fn dropped(&self, _delivered: u64, _undelivered: u64) -> BoxFuture<'_, Result<Option<u64>, String>> {
        // Counted exactly at publish (the script says how many it deleted).
        Box::pin(std::future::ready(Ok(None)))
    }

    fn leftovers(&self) -> BoxFuture<'_, Result<Vec<Vec<u8>>, String>> {
        Box::pin(queue::leftovers(self))
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.cmd.query::<()>(redis::cmd("DEL").arg(self.key()).arg(self.meta())).await.map_err(|e| e.to_string())
        })
    }

    fn broadcast(&self, topic: Topic, body: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        let channel = topic.name(&self.spec.run_name);
        Box::pin(async move {
            self.cmd
                .query::<i64>(redis::cmd("PUBLISH").arg(channel).arg(body))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Vec<u8>>, String>> {
        Box::pin(topics::subscribe(&self.client, topic.name(&self.spec.run_name), Arc::clone(&self.health)))
    }

    fn request(&self, topic: Topic, body: Vec<u8>, wait: Duration) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(topics::request(self, topic, body, wait))
    }

    fn serve(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Request>, String>> {
        Box::pin(topics::serve(self, topic))
    }
}
