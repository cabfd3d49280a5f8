//! The run's stream on Redis: publishes (batched, in order, each through the bounding script),
//! acknowledgements (batched, `XACK` and `XDEL` in one transaction), deliveries (`XREADGROUP`,
//! and `XAUTOCLAIM` for what a consumer has held past `ack_wait`), and the readings of what the
//! stream holds.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::{mpsc, oneshot};

use super::conn::{Conn, severs};
use super::scripts::{self, CLAIM_SCRIPT, HOLDING_SCRIPT, PUBLISH_SCRIPT};
use super::{GROUP, Redis};
use crate::engine::broker::adapter::{Ack, BoxFuture, Delivery, Holding, Published};

/// The most publishes sent in one pipeline.
const PUBLISH_BATCH: usize = 512;
/// The most acknowledgements sent in one transaction.
const ACK_BATCH: usize = 1024;
/// How long acknowledgements are tried again while the server is away before they are given up
/// (the jobs then stay pending: claimed after `ack_wait`, or read at the end).
const ACK_GIVE_UP: Duration = Duration::from_secs(5);
/// How often a fetch first claims what consumers have held past `ack_wait`.
const CLAIM_EVERY: Duration = Duration::from_millis(100);
/// Entries read at a time at the end.
const LEFTOVER_BATCH: usize = 1000;

/// One publish on its way to the publisher task.
pub struct Pub {
    pub payload: Vec<u8>,
    pub bound: usize,
    pub drop_oldest: bool,
    pub answer: oneshot::Sender<Published>,
}

/// Sends the publishes in the order given, as many at once as are waiting (one pipeline of
/// script calls), until the adapter is dropped.
pub async fn publisher(conn: Arc<Conn>, keys: [String; 2], mut rx: mpsc::Receiver<Pub>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let answers = publish_batch(&conn, &keys, &batch).await;
        for (p, a) in batch.drain(..).zip(answers) {
            let _ = p.answer.send(a);
        }
    }
}

/// One pipeline of publishes. Those that find the script gone from the server's cache (a
/// restart empties it) were not run: they are sent again alone, which loads it.
async fn publish_batch(conn: &Arc<Conn>, keys: &[String; 2], batch: &[Pub]) -> Vec<Published> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for p in batch {
        pipe.cmd("EVALSHA").arg(PUBLISH_SCRIPT.get_hash()).arg(2).arg(keys);
        pipe.arg(&p.payload).arg(p.bound).arg(if p.drop_oldest { "1" } else { "0" }).arg(GROUP);
    }
    let answers: Vec<redis::RedisResult<i64>> = match conn.pipe(&pipe).await {
        Ok(a) => a,
        Err(e) => return batch.iter().map(|_| Published::Failed(e.to_string())).collect(),
    };
    let mut out = Vec::with_capacity(batch.len());
    for (p, a) in batch.iter().zip(answers) {
        out.push(match a {
            Ok(n) => scripts::published(n),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                publish_one(conn, keys, &p.payload, p.bound, p.drop_oldest).await
            }
            Err(e) => Published::Failed(e.to_string()),
        });
    }
    out
}

/// One publish through the script on its own (which loads the script if the server lacks it).
pub async fn publish_one(
    conn: &Arc<Conn>,
    keys: &[String; 2],
    payload: &[u8],
    bound: usize,
    drop_oldest: bool,
) -> Published {
    let mut call = PUBLISH_SCRIPT.key(&keys[0]);
    call.key(&keys[1]).arg(payload).arg(bound).arg(if drop_oldest { "1" } else { "0" }).arg(GROUP);
    conn.script::<i64>(&call).await.map_or_else(|e| Published::Failed(e.to_string()), scripts::published)
}

/// What the acknowledger is asked.
pub enum AckMsg {
    /// The entry's job is done: `XACK` and `XDEL`.
    Ack(String),
    /// Answer once every acknowledgement before this one has reached the server (or been given up).
    Flush(oneshot::Sender<()>),
}

/// Acknowledges entries in batches, in order, until the adapter is dropped: each batch is one
/// `MULTI`/`EXEC` of `XACK` (the group forgets them) and `XDEL` (the stream does), so a reading
/// never sees an entry acknowledged but still held.
pub async fn acker(conn: Arc<Conn>, key: String, mut rx: mpsc::UnboundedReceiver<AckMsg>) {
    let mut msgs = Vec::with_capacity(ACK_BATCH);
    while rx.recv_many(&mut msgs, ACK_BATCH).await > 0 {
        let mut ids = Vec::new();
        let mut flushes = Vec::new();
        for m in msgs.drain(..) {
            match m {
                AckMsg::Ack(id) => ids.push(id),
                AckMsg::Flush(done) => flushes.push(done),
            }
        }
        if !ids.is_empty() {
            ack_batch(&conn, &key, &ids).await;
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

async fn ack_batch(conn: &Arc<Conn>, key: &str, ids: &[String]) {
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("XACK").arg(key).arg(GROUP).arg(ids).ignore().cmd("XDEL").arg(key).arg(ids).ignore();
    let until = Instant::now() + ACK_GIVE_UP;
    loop {
        match conn.pipe::<()>(&pipe).await {
            Ok(()) => return,
            Err(e) if severs(&e) && Instant::now() < until => tokio::time::sleep(CLAIM_EVERY).await,
            Err(e) => {
                tracing::warn!("acknowledging {} jobs failed: {e} (they stay in the stream)", ids.len());
                return;
            }
        }
    }
}

/// A delivered entry's handle: acknowledged through the acknowledger.
struct RedisAck {
    id: String,
    to: mpsc::UnboundedSender<AckMsg>,
}

impl Ack for RedisAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), String>> {
        let sent = self.to.send(AckMsg::Ack(self.id)).map_err(|_| "the acknowledger has stopped".to_string());
        Box::pin(std::future::ready(sent))
    }
}

/// Where a consumer's claims have got to.
pub struct Claims {
    cursor: String,
    last: Option<Instant>,
}

impl Default for Claims {
    fn default() -> Claims {
        Claims { cursor: "0-0".into(), last: None }
    }
}

/// At most `max` entries for this consumer: first the entries consumers have held past
/// `ack_wait` (marked redelivered), looked for every [`CLAIM_EVERY`] and at every fetch while a
/// scan finds some; else new ones, waiting up to `wait`.
pub async fn fetch(r: &Redis, max: usize, wait: Duration) -> Result<Vec<Delivery>, String> {
    let cursor = {
        let mut c = r.claims.lock().unwrap_or_else(PoisonError::into_inner);
        let due = c.last.is_none_or(|t| t.elapsed() >= CLAIM_EVERY);
        if due {
            c.last = Some(Instant::now());
        }
        due.then(|| c.cursor.clone())
    };
    if let Some(cursor) = cursor {
        let mut call = CLAIM_SCRIPT.key(r.key());
        call.key(r.meta()).arg(GROUP).arg(&r.consumer).arg(&cursor).arg(max);
        let v: Value = r.reads.script(&call).await.map_err(|e| e.to_string())?;
        let (next, claimed) = claimed(&v);
        let mut c = r.claims.lock().unwrap_or_else(PoisonError::into_inner);
        // A scan not finished, or one that found entries, goes on at the next fetch: what a dead
        // consumer held is older than anything new, and is served first.
        if next != "0-0" || !claimed.is_empty() {
            c.last = None;
        }
        c.cursor = next;
        drop(c);
        if !claimed.is_empty() {
            return Ok(deliveries(r, claimed, true));
        }
    }
    let ms = wait.as_millis().max(1);
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP").arg(GROUP).arg(&r.consumer).arg("COUNT").arg(max).arg("BLOCK").arg(ms as u64);
    cmd.arg("STREAMS").arg(r.key()).arg(">");
    let v: Value = r.reads.query_within(&cmd, wait).await.map_err(|e| e.to_string())?;
    // [[stream, [entry, …]]], or nil when nothing came within the wait.
    let entries = match v {
        Value::Array(streams) => streams.into_iter().next().and_then(|s| match s {
            Value::Array(mut kv) if kv.len() == 2 => Some(kv.swap_remove(1)),
            _ => None,
        }),
        _ => None,
    };
    Ok(deliveries(r, entries.map(|e| parse_entries(&e)).unwrap_or_default(), false))
}

/// `XAUTOCLAIM`'s answer: the next cursor and the entries claimed.
fn claimed(v: &Value) -> (String, Vec<(String, Vec<u8>)>) {
    match v {
        Value::Array(parts) if parts.len() >= 2 => {
            (text(&parts[0]).unwrap_or_else(|| "0-0".into()), parse_entries(&parts[1]))
        }
        _ => ("0-0".into(), Vec::new()),
    }
}

fn deliveries(r: &Redis, entries: Vec<(String, Vec<u8>)>, redelivered: bool) -> Vec<Delivery> {
    entries
        .into_iter()
        .map(|(id, payload)| Delivery {
            payload,
            redelivered,
            seq: None,
            ack: Box::new(RedisAck { id, to: r.acks.clone() }),
        })
        .collect()
}

/// Entries `[[id, [field, value, …]], …]` as (id, the first value): a job's message is its one
/// field. An entry without fields (deleted meanwhile) is left out.
fn parse_entries(v: &Value) -> Vec<(String, Vec<u8>)> {
    let Value::Array(items) = v else { return Vec::new() };
    items
        .iter()
        .filter_map(|e| match e {
            Value::Array(pair) if pair.len() == 2 => {
                let id = text(&pair[0])?;
                let Value::Array(fields) = &pair[1] else { return None };
                let payload = match fields.get(1) {
                    Some(Value::BulkString(b)) => b.clone(),
                    _ => Vec::new(),
                };
                Some((id, payload))
            }
            _ => None,
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// One reading: undelivered = `XLEN` − pending (acknowledged entries are deleted, so the
/// stream holds exactly those two kinds), unacknowledged = pending; and the server's totals of
/// entries claimed and trimmed, kept for [`Adapter::stats`](crate::engine::broker::adapter::Adapter::stats).
pub async fn holding(r: &Redis) -> Result<Holding, String> {
    let mut call = HOLDING_SCRIPT.key(r.key());
    call.key(r.meta()).arg(GROUP);
    let (len, pending, claimed, trimmed): (u64, u64, u64, u64) =
        r.cmd.script(&call).await.map_err(|e| e.to_string())?;
    r.totals.lock().unwrap_or_else(PoisonError::into_inner).read(claimed, trimmed);
    Ok(Holding { undelivered: len.saturating_sub(pending), unacked: pending })
}

/// The server's totals of entries claimed and trimmed over the run, through restarts: a server
/// that lost the run's hash counts from 0 again, and what it had counted is kept.
#[derive(Default)]
pub struct Totals {
    before: [u64; 2],
    last: [u64; 2],
}

impl Totals {
    fn read(&mut self, claimed: u64, trimmed: u64) {
        for (i, now) in [claimed, trimmed].into_iter().enumerate() {
            if now < self.last[i] {
                self.before[i] += self.last[i];
            }
            self.last[i] = now;
        }
    }

    /// Entries claimed from one consumer by another, and entries `drop-oldest` deleted undelivered.
    pub fn get(&self) -> (u64, u64) {
        (self.before[0] + self.last[0], self.before[1] + self.last[1])
    }
}

/// Every message the stream holds, delivered or not, oldest first.
pub async fn leftovers(r: &Redis) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut from = "-".to_string();
    loop {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(r.key()).arg(&from).arg("+").arg("COUNT").arg(LEFTOVER_BATCH);
        let v: Value = r.cmd.query(&cmd).await.map_err(|e| e.to_string())?;
        let entries = parse_entries(&v);
        let Some((last, _)) = entries.last() else { return Ok(out) };
        from = format!("({last}");
        let n = entries.len();
        out.extend(entries.into_iter().map(|(_, p)| p));
        if n < LEFTOVER_BATCH {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_claims_are_read_from_the_servers_answers() {
        let bulk = |s: &[u8]| Value::BulkString(s.to_vec());
        let entry =
            |id: &str, v: &[u8]| Value::Array(vec![bulk(id.as_bytes()), Value::Array(vec![bulk(b"j"), bulk(v)])]);
        let entries =
            Value::Array(vec![entry("1-0", b"a"), Value::Array(vec![bulk(b"2-0"), Value::Nil]), entry("3-1", b"c")]);
        assert_eq!(parse_entries(&entries), vec![("1-0".into(), b"a".to_vec()), ("3-1".into(), b"c".to_vec())]);
        let claim = Value::Array(vec![bulk(b"5-0"), entries, Value::Array(vec![bulk(b"2-0")])]);
        let (next, got) = claimed(&claim);
        assert_eq!((next.as_str(), got.len()), ("5-0", 2));
        assert_eq!(claimed(&Value::Nil).0, "0-0");
    }

    #[test]
    fn server_totals_survive_a_server_that_counts_from_zero_again() {
        let mut t = Totals::default();
        t.read(3, 10);
        t.read(5, 10);
        t.read(1, 0);
        assert_eq!(t.get(), (6, 10));
    }
}
