//! RabbitMQ (AMQP 0-9-1) behind the [`Adapter`] seam (scheme `amqp://`, `amqps://`), through
//! lapin (pure Rust; TLS by rustls with ring).
//!
//! A run named `NAME` owns, in the URL's virtual host (`/` when the URL names none):
//! - the queue `pooltune.NAME.jobs`: a durable **quorum** queue (see below), `x-max-length` =
//!   the queue bound, `x-overflow` = `reject-publish` for `block` and `reject`, `drop-head` for
//!   `drop-oldest`, and `x-dead-letter-exchange` routing what it drops into
//! - the queue `pooltune.NAME.dropped`, where the jobs `drop-head` discarded are counted;
//! - the fanout exchange `pooltune.NAME.control` ([`Topic::Control`]: each subscriber binds an
//!   exclusive queue of its own), and the controller's exclusive queues `pooltune.NAME.report`
//!   and `pooltune.NAME.clock` ([`Topic::Report`], [`Topic::Clock`]), answered by RabbitMQ's
//!   direct reply-to (`amq.rabbitmq.reply-to`) with a correlation id.
//!
//! **Quorum, not classic**: a quorum queue is durable by construction (its Raft log is written
//! to disk before a publish is confirmed), so a server that stops and starts again loses none of
//! the jobs it had confirmed, and it is the queue type RabbitMQ recommends for work that must
//! not be lost. It costs little here (one node, one replica) and has two visible differences from
//! a classic queue: it has no channel-wide (`global`) prefetch, and it enters `reject-publish`
//! once *over* its bound, so it may hold `bound + 1` ready jobs.
//!
//! **The bound counts ready jobs only**: RabbitMQ's `x-max-length` does not count the jobs
//! delivered and not yet acknowledged. Where NATS' stream holds at most `bound` jobs in all,
//! RabbitMQ holds up to `bound` waiting plus every consumer's prefetch (the snapshot's
//! `queue.depth`, ready + unacknowledged, may pass the bound by that much).
//!
//! Publishes carry publisher confirms and `mandatory`: a nack is the queue full
//! ([`Published::Full`](crate::engine::broker::adapter::Published::Full): rejected under `reject`, retried by the core under `block`); a message
//! returned unroutable (the queue gone) is a failure. `drop-head` discards the oldest *ready*
//! jobs, each dead-lettered into `pooltune.NAME.dropped`; the sampler reads that queue's count
//! with the jobs queue's, each publish's answer carries the drops counted since the last
//! ([`Published::Stored`](crate::engine::broker::adapter::Published::Stored)), and at the end [`Adapter::dropped`] is the count itself: exact, as
//! nothing else is dead-lettered there (no TTL, and a message that is not a job is acknowledged,
//! never rejected).
//!
//! Each process has one consumer with `basic.qos` prefetch per consumer = the `prefetch` knob
//! (RabbitMQ's own knob: the unacknowledged deliveries a consumer may hold). Per consumer, not
//! per channel: a quorum queue has no channel-wide prefetch, and the knob is one process's. The
//! core's fetch takes at most the inbox's room from the consumer's deliveries; as the inbox is
//! bounded by the same `prefetch`, what RabbitMQ pushes ahead always fits in it. A worker node
//! acknowledges after the report that counts the job, so its finished jobs hold prefetch places
//! until the next tick: keep `prefetch` above a node's workers plus a tick's completions.
//!
//! **`ack_wait` does not apply**: RabbitMQ (3.10) has no per-queue acknowledgement timeout. It
//! redelivers what a consumer held when that consumer's channel closes: at once when its process
//! dies (the kernel closes the socket), and after two missed heartbeats ([`HEARTBEAT`]) when its
//! host is gone. The server-wide `consumer_timeout` (30 minutes by default) closes the channel
//! of a consumer that holds one delivery longer; pooltune does not set it.
//!
//! **Knobs live**: `reject` ↔ `block` is the core's alone (the same queue serves both);
//! `prefetch` is applied to the controller's consumer (a new consumer with the new prefetch; the
//! old one's deliveries are taken first). A bound or a switch to or from `drop-oldest` is refused
//! with a message: RabbitMQ cannot change a declared queue's arguments (an operator policy set
//! with `rabbitmqctl set_policy` can, on the server). A worker node's consumer takes its prefetch
//! from its first fetch (the inbox's whole room) and follows a raised one.
//!
//! **What the queue holds**: `queue.declare` (passive) gives its ready jobs; RabbitMQ tells no
//! client how many are unacknowledged. Each adapter counts its own (delivered, not yet settled);
//! a node sends its count with every report, and the controller's [`Adapter::holding`] is its
//! own plus its nodes' latest (a node silent for [`NODE_STALE`] counts 0: its channel closed
//! and the server requeued what it held).
//!
//! **The link**: lapin does not reconnect by itself here; the adapter's supervisor does (every
//! 100 ms at first, at most every second), records the outage in the [`Link`], declares the
//! run's exchange and, on the controller, its queues again, and every consumer (jobs, control,
//! requests, replies) is made again on the new connection. A delivery from the lost connection
//! cannot be acknowledged any more: its acknowledgement fails (counted) and the server delivers
//! the job again (counted redelivered, and a duplicate if it ran twice).

mod control;
mod jobs;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::engine::broker::adapter::{
    Adapter, BoxFuture, BoxStream, Confirm, Delivery, Holding, Request, Shared, Topic,
};
use crate::engine::broker::link::Link;
use crate::engine::broker::state::Cfg;
use crate::engine::broker::{BrokerError, BrokerSpec};

pub use session::HEARTBEAT;
use session::Session;

/// A node silent this long counts no unacknowledged jobs.
pub const NODE_STALE: Duration = Duration::from_secs(1);

/// The consumer's tag prefix, shown as the snapshot's consumer.
const CONSUMER: &str = "pooltune-workers";

/// RabbitMQ's largest prefetch count (a 16-bit field).
const MAX_QOS: usize = u16::MAX as usize;

/// Connects, and returns the adapter.
pub async fn connect(spec: &BrokerSpec) -> Result<Shared, BrokerError> {
    session::connect(spec).await
}

/// RabbitMQ: a connection kept up by a supervisor, the run's queues and consumers.
pub struct Amqp {
    spec: BrokerSpec,
    link: Arc<Link>,
    /// The connection in force (`None` while reconnecting).
    session: watch::Sender<Option<Arc<Session>>>,
    /// The controller's queue arguments, declared again after a reconnection.
    declared: Mutex<Option<Cfg>>,
    /// The jobs consumer of this process (a fetch's stream holds it while it lasts).
    consumer: Arc<tokio::sync::Mutex<Option<jobs::Consuming>>>,
    /// The requesting channel (reports, clocks) on the current connection.
    rpc: tokio::sync::Mutex<Option<Arc<control::Rpc>>>,
    /// The prefetch count the next consumer takes (0: from the first fetch).
    qos: AtomicU64,
    /// The jobs delivered to this process and not yet settled, on the current consumer.
    unacked: Mutex<Arc<AtomicU64>>,
    /// Each node's unacknowledged jobs, as its latest report said (the controller).
    nodes: Mutex<HashMap<String, (u64, Instant)>>,
    /// `pooltune.NAME.dropped`'s count at the latest reading, and how much of it publishes
    /// have carried.
    dropped_seen: AtomicU64,
    dropped_told: AtomicU64,
    /// Publishes the queue refused (nacked).
    nacked: AtomicU64,
    /// The most jobs delivered and not yet acknowledged at a reading, every process's.
    unacked_max: AtomicU64,
    /// This process, told apart from others in its reports' headers.
    instance: String,
    /// Itself, for the tasks its streams and confirms run.
    me: Weak<Amqp>,
}

impl Amqp {
    fn jobs(&self) -> String {
        format!("pooltune.{}.jobs", self.spec.run_name)
    }

    fn dead(&self) -> String {
        format!("pooltune.{}.dropped", self.spec.run_name)
    }

    /// The connection in force, or why there is none.
    fn session(&self) -> Result<Arc<Session>, String> {
        self.session.borrow().clone().ok_or_else(|| "the broker is away (reconnecting)".to_string())
    }

    /// The jobs this process holds unacknowledged.
    fn own_unacked(&self) -> u64 {
        self.unacked.lock().unwrap_or_else(PoisonError::into_inner).load(Ordering::Relaxed)
    }

    fn setup_error(&self, what: &str, e: &dyn std::fmt::Display) -> BrokerError {
        BrokerError::Setup { url: self.spec.shown(), what: what.to_string(), reason: self.spec.scrub(&e.to_string()) }
    }
}

impl Adapter for Amqp {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn bound_label(&self) -> &'static str {
        "ready bound"
    }

    fn names(&self) -> (String, String) {
        (self.jobs(), CONSUMER.to_string())
    }

    fn link(&self) -> &Arc<Link> {
        &self.link
    }

    fn create(&self, cfg: Cfg) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(jobs::create(self, cfg))
    }

    fn open(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(jobs::open(self))
    }

    fn apply(&self, was: Cfg, now: Cfg) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(std::future::ready(jobs::apply(self, was, now)))
    }

    fn bound_held(&self) -> Option<usize> {
        self.declared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).map(|c| c.bound)
    }

    fn follow(&self, was: Cfg, now: Cfg) {
        jobs::follow(self, was, now);
    }

    fn publish(&self, payload: Vec<u8>, _cfg: Cfg) -> BoxFuture<'_, Result<Confirm, String>> {
        Box::pin(jobs::publish(self, payload))
    }

    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<BoxStream<Delivery>, String>> {
        Box::pin(jobs::fetch(self, max, wait))
    }

    fn holding(&self) -> BoxFuture<'_, Result<Holding, String>> {
        Box::pin(jobs::holding(self))
    }

    fn recover(&self, cfg: Cfg) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(jobs::recover(self, cfg))
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), String>> {
        // Acknowledgements are sent as they are made (each awaited by its settler); what is left
        // is the server applying them, which the core's end waits out by reading until stable.
        Box::pin(async { Ok(()) })
    }

    fn dropped(&self, _delivered: u64, _undelivered: u64) -> BoxFuture<'_, Result<Option<u64>, String>> {
        Box::pin(jobs::dropped(self))
    }

    fn leftovers(&self) -> BoxFuture<'_, Result<Vec<Vec<u8>>, String>> {
        Box::pin(jobs::leftovers(self))
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(jobs::delete(self))
    }

    fn broadcast(&self, topic: Topic, body: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(control::broadcast(self, topic, body))
    }

    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Vec<u8>>, String>> {
        Box::pin(control::subscribe(self, topic))
    }

    fn request(&self, topic: Topic, body: Vec<u8>, wait: Duration) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(control::request(self, topic, body, wait))
    }

    fn serve(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Request>, String>> {
        Box::pin(control::serve(self, topic))
    }

    /// RabbitMQ's own names: `unacked_max`, the most jobs delivered and not yet acknowledged at
    /// a reading (every process's: `ack_pending_max` by RabbitMQ's name), and `confirms_nacked`,
    /// publishes the queue refused with a nack at its bound (each a rejected job under `reject`,
    /// a retry under `block`).
    fn stats(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("unacked_max", self.unacked_max.load(Ordering::Relaxed)),
            ("confirms_nacked", self.nacked.load(Ordering::Relaxed)),
        ]
    }
}

/// What a new connection declares before it is used: the control exchange, and on the
/// controller the run's queues with the arguments they had. (Here, not in `session`, which
/// `jobs` builds on.)
async fn again(a: &Amqp, s: &Session) -> Result<(), String> {
    session::declare_control(s, &a.spec.run_name).await?;
    let declared = *a.declared.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(cfg) = declared {
        jobs::declare(a, s, cfg).await?;
    }
    Ok(())
}
