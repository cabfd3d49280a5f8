//! The seam between the broker-independent queue (outbox, publisher, fetcher, the node protocol,
//! the cluster's accounting, the end-of-run reading) and one broker.
//!
//! An adapter only moves bytes: it publishes a job's 41-byte [`wire`](super::wire) message
//! into the run's queue and says what the broker did with it, delivers messages with a handle
//! that acknowledges them, reads how many the queue holds, and carries the run's control words,
//! reports and clock requests. Everything it moves is opaque to it, and everything counted is
//! counted by the core. A new broker is a new adapter (a folder beside `nats/`) and one line in
//! [`connect`](super::connect)'s table of schemes.
//!
//! The methods return boxed futures so that the core holds an `Arc<dyn Adapter>` and stays one
//! piece of code whatever the broker.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::BrokerError;
use super::link::Link;
use crate::settings::{Policy, Settings};

/// The knobs the broker applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cfg {
    pub bound: usize,
    pub policy: Policy,
    pub prefetch: usize,
    pub ack_wait: Duration,
}

impl Cfg {
    pub fn of(s: &Settings) -> Cfg {
        Cfg { bound: s.queue, policy: s.policy, prefetch: s.prefetch, ack_wait: s.ack_wait }
    }
}

/// A boxed future, as every adapter method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed stream, as the adapter's deliveries and subscriptions are.
pub type BoxStream<T> = Pin<Box<dyn futures_util::Stream<Item = T> + Send>>;

/// What the broker did with one published job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Stored. `dropped`: jobs the broker discarded to make room for it (`drop-oldest`) that
    /// had not been delivered, when the adapter learns that at publish (else 0: the core
    /// counts drops from [`Delivery::seq`]'s jumps or from [`Adapter::dropped`] at the end).
    Stored { dropped: u64 },
    /// Refused because the queue is at its bound (`reject`, or `block` to be tried again).
    Full,
    /// Not stored for another reason (the broker away, an error).
    Failed(String),
}

/// A publish on its way: resolves to what the broker did, so publishes can be pipelined.
pub type Confirm = BoxFuture<'static, Published>;

/// One delivered message.
pub struct Delivery {
    pub payload: Vec<u8>,
    /// The broker delivered this message before (to this consumer or another).
    pub redelivered: bool,
    /// The message's place among the run's stored messages, numbered without gaps from 1 in the
    /// order stored, when the broker numbers them so (NATS: the stream sequence). A jump between
    /// first deliveries is messages discarded undelivered. `None`: no such numbering.
    pub seq: Option<u64>,
    /// Settles the message.
    pub ack: Box<dyn Ack>,
}

/// Settles one delivered message.
pub trait Ack: Send + Sync + 'static {
    /// The job is done (whatever its outcome): the broker forgets it.
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), String>>;
    /// The message is not a job of this version: removed, never delivered again.
    fn discard(self: Box<Self>) -> BoxFuture<'static, Result<(), String>> {
        self.ack()
    }
}

/// What the run's queue holds at one reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holding {
    /// Stored, not yet delivered to any consumer.
    pub undelivered: u64,
    /// Delivered (prefetched or in service), not yet acknowledged.
    pub unacked: u64,
}

/// The run's control channels beside its queue (see [`protocol`](super::protocol)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Controller → every node: the knobs, the end. Broadcast; a node that joins late takes
    /// the next one.
    Control,
    /// Node → controller, request and reply: a node's tick.
    Report,
    /// Node → controller, request and reply: the controller's clocks.
    Clock,
}

impl Topic {
    /// The topic's name for run `run` (`pooltune.RUN.control`): adapters name their channels
    /// after it.
    #[must_use]
    pub fn name(self, run: &str) -> String {
        let t = match self {
            Topic::Control => "control",
            Topic::Report => "report",
            Topic::Clock => "clock",
        };
        format!("pooltune.{run}.{t}")
    }
}

/// Sends the answer to one request.
pub type Reply = Box<dyn FnOnce(Vec<u8>) -> BoxFuture<'static, ()> + Send>;

/// A request taken off a [`Topic`], with the way to answer it.
pub struct Request {
    pub body: Vec<u8>,
    pub reply: Reply,
}

/// One broker.
///
/// A controller calls [`create`](Adapter::create) once, then publishes; a worker node calls
/// [`open`](Adapter::open) after the controller's first word. Both fetch. Only the controller
/// [`apply`](Adapter::apply)s knob changes, reads [`holding`](Adapter::holding) and, at the
/// end, [`dropped`](Adapter::dropped), [`leftovers`](Adapter::leftovers) and
/// [`delete`](Adapter::delete).
pub trait Adapter: Send + Sync + 'static {
    /// Which broker (`nats`), for the snapshot's `broker.kind`.
    fn kind(&self) -> &'static str;

    /// What the broker calls the place that holds the run's jobs (`stream`, `queue`), for the
    /// dashboard's and the summary's labels.
    fn holder(&self) -> &'static str {
        "queue"
    }

    /// What the bound counts, for labels: `bound` (everything the broker holds for the run), or
    /// a narrower count (RabbitMQ's `x-max-length` counts ready jobs only: `ready bound`).
    fn bound_label(&self) -> &'static str {
        "bound"
    }

    /// The bound the broker holds the run's queue to, when it cannot follow the `queue` knob live
    /// (`None`: [`apply`](Adapter::apply) keeps it the knob's).
    fn bound_held(&self) -> Option<usize> {
        None
    }

    /// The broker's name for the run's queue and its consumer (group), for the snapshot.
    fn names(&self) -> (String, String);

    /// The broker's own counts that the core's fields do not cover, by name (the JSON's
    /// `broker` object shows them beside its own; document each in the adapter's doc and the
    /// README). Read each tick.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The connection's state and outages, kept by the adapter.
    fn link(&self) -> &Arc<Link>;

    /// The controller: makes the run's queue with the knobs `cfg` (its bound, policy,
    /// acknowledgement wait), emptying what an earlier run of the same name left.
    fn create(&self, cfg: Cfg) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// A worker node: opens the run's queue, which the controller has made.
    fn open(&self) -> BoxFuture<'_, Result<(), BrokerError>>;

    /// The controller: applies changed knobs to the queue (`was` → `now`; `prefetch` is the
    /// core's, but an adapter whose broker pushes may apply it too).
    fn apply(&self, was: Cfg, now: Cfg) -> BoxFuture<'_, Result<(), String>>;

    /// A worker node: its own consumer's knobs changed (`prefetch`, where the broker pushes up
    /// to a prefetch). The queue's knobs are the controller's to [`apply`](Adapter::apply).
    fn follow(&self, _was: Cfg, _now: Cfg) {}

    /// Sends one job under the knobs `cfg`. `Err`: it could not be sent at all (a failure, as
    /// [`Published::Failed`]); `Ok`: the broker's answer, to be awaited.
    fn publish(&self, payload: Vec<u8>, cfg: Cfg) -> BoxFuture<'_, Result<Confirm, String>>;

    /// Delivers at most `max` messages, waiting up to `wait` for the first; the stream ends when
    /// the request does (an error in it ends it too).
    fn fetch(&self, max: usize, wait: Duration) -> BoxFuture<'_, Result<BoxStream<Delivery>, String>>;

    /// One reading of what the run's queue holds.
    fn holding(&self) -> BoxFuture<'_, Result<Holding, String>>;

    /// The controller, when [`holding`](Adapter::holding) failed on a live connection: the
    /// broker may have come back without the run's queue. Makes it again if so; `Ok(true)` when
    /// it was gone (what it held is counted at the end).
    fn recover(&self, cfg: Cfg) -> BoxFuture<'_, Result<bool, String>>;

    /// Waits until everything sent (acknowledgements among it) has reached the broker.
    fn flush(&self) -> BoxFuture<'_, Result<(), String>>;

    /// The controller, at the end of a run that has been `drop-oldest`: the jobs the broker
    /// discarded undelivered, given the run's first deliveries and the jobs still undelivered.
    /// `Ok(None)`: the adapter has counted them as they happened (publish or `seq`).
    fn dropped(&self, delivered: u64, undelivered: u64) -> BoxFuture<'_, Result<Option<u64>, String>>;

    /// The controller, at the end, with every node done: every message the run's queue still
    /// holds, delivered or not (what a consumer held unacknowledged included).
    fn leftovers(&self) -> BoxFuture<'_, Result<Vec<Vec<u8>>, String>>;

    /// The controller, last: removes the run's queue and whatever else the run made.
    fn delete(&self) -> BoxFuture<'_, Result<(), String>>;

    /// Sends `body` to every subscriber of `topic` (fire and forget).
    fn broadcast(&self, topic: Topic, body: Vec<u8>) -> BoxFuture<'_, Result<(), String>>;

    /// Every message broadcast on `topic` from now on.
    fn subscribe(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Vec<u8>>, String>>;

    /// Sends a request on `topic` and waits up to `wait` for its one answer.
    fn request(&self, topic: Topic, body: Vec<u8>, wait: Duration) -> BoxFuture<'_, Result<Vec<u8>, String>>;

    /// The requests sent on `topic` from now on (one server per topic: the controller).
    fn serve(&self, topic: Topic) -> BoxFuture<'_, Result<BoxStream<Request>, String>>;
}

/// An adapter behind the seam.
pub type Shared = Arc<dyn Adapter>;
