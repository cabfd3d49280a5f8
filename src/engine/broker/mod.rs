//! NATS JetStream as the run's queue (feature `broker`).
//!
//! A run named `NAME` owns:
//! - the stream `POOLTUNE_NAME` on the subject `pooltune.NAME.jobs`, work-queue retention (a job
//!   leaves the stream when a worker acknowledges it), memory storage, `max_msgs` = the queue
//!   bound, discard `new` for the `block` and `reject` policies and `old` for `drop-oldest`;
//! - one durable pull consumer, `workers`, explicit acks, `ack_wait` from its knob and
//!   `max_ack_pending` = the queue bound.
//!
//! **The bound counts what the stream holds**: jobs waiting, prefetched by a node, and in
//! service until acknowledged. (The in-process queue's bound counts waiting jobs only.) A
//! snapshot's `queue.depth` is that holding, read from the server; the jobs waiting for a
//! worker are counted by place apart (`queue.parts`: the controller's outbox, bounded by the
//! bound too; the stream's undelivered jobs; the jobs pulled ahead at every worker process),
//! and their sum is the queue length the model and Little's check use.
//!
//! The client is async-nats without its `server_2_10`+ features, so it asks only what servers
//! from 2.9 on understand (its typed account info, which 2.9's answer does not fit, is not
//! used). The tests run against the server `.ci/run` installs (2.15); they pass against
//! Debian's 2.9.10 too.

mod cluster;
mod leftovers;
mod node;
pub mod protocol;
mod queue;
mod reports;
mod state;
mod tasks;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use state::Link;

pub(crate) use queue::BrokerQueue;
pub(crate) use state::Receipt;

/// The durable consumer every node of a run pulls from.
pub const CONSUMER: &str = "workers";

/// How long connecting may take before the broker counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The pause before the first reconnection try, added per try up to [`RECONNECT_MAX`].
const RECONNECT_STEP: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// Which broker, and which run on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSpec {
    /// `nats://HOST:PORT` as given.
    pub url: String,
    /// The run's name: letters, digits, `-` and `_`.
    pub run_name: String,
}

/// Why the broker could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("--broker {url:?} is not accepted: {reason}; expected nats://HOST:PORT")]
    BadUrl { url: String, reason: String },
    #[error("--run-name {name:?} is not accepted: expected 1 to 64 letters, digits, '-' or '_'")]
    BadRunName { name: String },
    #[error("cannot reach the broker at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the broker at {url} does not offer JetStream ({reason}); start nats-server with -js")]
    NoJetStream { url: String, reason: String },
    #[error("the broker at {url} would not set up the run's {what}: {reason}")]
    Setup { url: String, what: String, reason: String },
    #[error("run {run} speaks protocol version {theirs}; this pooltune speaks {ours}: run the same pooltune version on every node", ours = protocol::VERSION)]
    Incompatible { run: String, theirs: u32 },
}

impl BrokerSpec {
    /// Checks the URL's form and the run's name (nothing is contacted yet).
    ///
    /// # Errors
    /// The URL or the name refused, and what is accepted.
    pub fn new(url: &str, run_name: &str) -> Result<BrokerSpec, BrokerError> {
        let bad = |reason: &str| BrokerError::BadUrl { url: url.to_string(), reason: reason.to_string() };
        let rest = url.strip_prefix("nats://").ok_or_else(|| bad("the scheme must be nats://"))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("it names no port"))?;
        if host.is_empty() || host.contains(['/', '@', ' ', ',']) {
            return Err(bad("it names no plain host"));
        }
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("the port must be 1 to 65535"));
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if run_name.is_empty() || run_name.len() > 64 || !run_name.chars().all(ok) {
            return Err(BrokerError::BadRunName { name: run_name.to_string() });
        }
        Ok(BrokerSpec { url: url.to_string(), run_name: run_name.to_string() })
    }

    /// The run's stream.
    #[must_use]
    pub fn stream(&self) -> String {
        format!("POOLTUNE_{}", self.run_name)
    }

    /// The subject the run's jobs are published on.
    #[must_use]
    pub fn subject(&self) -> String {
        format!("pooltune.{}.jobs", self.run_name)
    }
}

/// A run name no other run on this broker is likely to have: `run-` and the process id and the
/// time in milliseconds, in hex.
#[must_use]
pub fn unique_run_name() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("run-{:x}-{ms:x}", std::process::id())
}

/// Connects, checks JetStream, and returns the client and its connection's record.
async fn connect(spec: &BrokerSpec) -> Result<(async_nats::Client, Arc<Link>), BrokerError> {
    let unreachable = |reason: String| BrokerError::Unreachable { url: spec.url.clone(), reason };
    let link = Arc::new(Link::default());
    let events = Arc::clone(&link);
    let options = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .name("pooltune")
        .max_reconnects(None)
        // Tries again every 100 ms at first, then at most every second: a server back after a
        // restart is found within a second (the client's own default waits up to 4 s).
        .reconnect_delay_callback(|tries| {
            RECONNECT_STEP.saturating_mul(u32::try_from(tries).unwrap_or(u32::MAX)).min(RECONNECT_MAX)
        })
        .event_callback(move |e| {
            events.on(&e);
            std::future::ready(())
        });
    let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(spec.url.as_str()))
        .await
        .map_err(|_| unreachable("no answer".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    jetstream_enabled(&client).await.map_err(|reason| BrokerError::NoJetStream { url: spec.url.clone(), reason })?;
    Ok((client, link))
}

/// Whether the server answers JetStream's account request without an error. The answer is read
/// as plain JSON: async-nats 0.51's typed account info does not parse a 2.9 server's.
async fn jetstream_enabled(client: &async_nats::Client) -> Result<(), String> {
    let reply = client.request("$JS.API.INFO", bytes::Bytes::new()).await.map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("an answer that is not JSON: {e}"))?;
    match v.get("error") {
        Some(e) => Err(e.get("description").and_then(|d| d.as_str()).unwrap_or("an error").to_string()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names_are_checked_before_anything_is_contacted() {
        let s = BrokerSpec::new("nats://127.0.0.1:4222", "a-b_9").unwrap();
        assert_eq!((s.stream().as_str(), s.subject().as_str()), ("POOLTUNE_a-b_9", "pooltune.a-b_9.jobs"));
        for (url, why) in [
            ("http://x:1", "scheme"),
            ("nats://x", "no port"),
            ("nats://:4222", "no plain host"),
            ("nats://a/b:1", "no plain host"),
            ("nats://x:0", "1 to 65535"),
            ("nats://x:99999", "1 to 65535"),
        ] {
            let e = BrokerSpec::new(url, "r").unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("expected nats://HOST:PORT"), "{url}: {e}");
        }
        for name in ["", "a.b", "a b", &"x".repeat(65)] {
            assert!(matches!(BrokerSpec::new("nats://x:1", name), Err(BrokerError::BadRunName { .. })), "{name}");
        }
        assert!(unique_run_name().starts_with("run-"));
    }
}
