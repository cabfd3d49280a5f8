//! A message broker as the run's queue (feature `broker`): one broker-independent core and an
//! adapter per broker.
//!
//! The core (this folder) is the queue's plumbing and its accounting: the outbox the producer
//! fills, the publisher and its `block`/`reject`/`drop-oldest` handling, the fetcher and the
//! inbox the workers take from, the readings of the queue's depth, the node protocol (first
//! word, clocks, reports, job ids counted once), the cluster's accounting and the end-of-run
//! reading of what is left. An adapter ([`adapter::Adapter`]) only moves opaque messages,
//! acknowledgements and control words: [`nats`] for NATS JetStream, [`redis`] for Redis Streams,
//! [`amqp`] for RabbitMQ. The URL's scheme picks it.
//!
//! **The bound counts what the broker holds for the run**: jobs waiting, prefetched by a node,
//! and in service until acknowledged, as the adapter's broker counts them (each adapter's doc
//! says how its broker does). A snapshot's `queue.depth` is that holding, read from the server;
//! the jobs waiting for a worker are counted by place apart (`queue.parts`: the controller's
//! outbox, bounded by the bound too; the broker's undelivered jobs; the jobs pulled ahead at
//! every worker process), and their sum is the queue length the model and Little's check use.

pub mod adapter;
pub mod amqp;
mod cluster;
mod leftovers;
pub mod link;
pub mod nats;
mod node;
pub mod protocol;
mod queue;
pub mod redis;
mod reports;
mod spec;
mod state;
mod tasks;
pub mod wire;

pub(crate) use queue::BrokerQueue;
pub use spec::{BrokerError, BrokerSpec, Security, redact, redact_args, unique_run_name};
pub(crate) use state::Receipt;

/// The schemes an adapter serves, as `--broker` accepts them; the first of each line is the
/// plain one, shown in messages as `SCHEME://HOST:PORT`.
pub const SCHEMES: &[&[&str]] = &[&["nats", "tls"], &["redis", "rediss"], &["amqp", "amqps"]];

/// Connects to the broker the spec's scheme names: the table of adapters.
pub async fn connect(spec: &BrokerSpec) -> Result<adapter::Shared, BrokerError> {
    spec.security.check()?;
    match spec.parsed.scheme() {
        "nats" | "tls" => nats::connect(spec).await,
        "redis" | "rediss" => redis::connect(spec).await,
        "amqp" | "amqps" => amqp::connect(spec).await,
        other => {
            Err(BrokerError::BadUrl { url: spec.shown(), reason: format!("the scheme {other}:// has no adapter") })
        }
    }
}
