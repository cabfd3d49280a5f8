//! The end of a broker run: what the run's stream still holds, read job by job.
//!
//! Counts alone cannot tell a job never run from one a node finished and reported but did not
//! live to acknowledge (killed, or the run ended between its report and its acknowledgement):
//! both are held by the stream. So at the end, with every node done or lost, the controller
//! deletes the run's consumer (what it held unacknowledged becomes deliverable again), reads
//! every message left through a consumer of its own, and sorts them by job id: finished
//! somewhere (counted already), handed back by this process (counted already), or neither
//! (never run: abandoned). A job stored twice (a publish tried again after its acknowledgement
//! was lost) is one job.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use futures_util::StreamExt;

use super::CONSUMER;
use super::wire::Wire;

/// Messages asked for per fetch.
const FETCH: usize = 1000;

/// The distinct jobs the stream `name` holds that `counted` does not place.
pub async fn never_run(js: &jetstream::Context, name: &str, counted: impl Fn(u64) -> bool) -> Result<u64, String> {
    let mut stream = js.get_stream(name).await.map_err(|e| e.to_string())?;
    let messages = stream.info().await.map_err(|e| e.to_string())?.state.messages;
    if messages == 0 {
        return Ok(0);
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
    let mut ids = HashSet::new();
    let mut read = 0u64;
    while read < messages {
        let mut batch = consumer
            .fetch()
            .max_messages(FETCH)
            .expires(Duration::from_millis(200))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let before = read;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| e.to_string())?;
            read += 1;
            if let Ok(w) = Wire::decode(&m.payload) {
                ids.insert(w.id);
            }
        }
        if read == before {
            break;
        }
    }
    if read < messages {
        tracing::warn!("stream {name}: {read} of its {messages} messages could be read at the end");
    }
    Ok(ids.into_iter().filter(|&id| !counted(id)).count() as u64)
}
