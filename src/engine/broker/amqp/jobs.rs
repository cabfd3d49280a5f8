//! The run's jobs on RabbitMQ: the quorum queue and its dead-letter queue from the knobs, a
//! publish and its confirm, the consumer a fetch takes from and a delivery's acknowledgement,
//! the readings of what the queue holds and dropped, and the end's reading of what is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Consumer};

use super::session::Session;
use super::{Amqp, CONSUMER, MAX_QOS, NODE_STALE};
use crate::engine::broker::BrokerError;
use crate::engine::broker::adapter::{Ack, BoxFuture, BoxStream, Confirm, Delivery, Holding, Published, Topic};
use crate::engine::broker::state::Cfg;
use crate::settings::Policy;

/// How long the end waits for every other consumer of the queue to be gone (their channels
/// closed, what they held requeued) before it reads what is left.
const CONSUMERS_GONE: Duration = Duration::from_secs(5);

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// The overflow behaviour a policy needs: `drop-head` for `drop-oldest`; `reject-publish` for
/// `reject` and `block` (a nack the core counts as rejected, or tries again).
fn overflow(p: Policy) -> &'static str {
    if p == Policy::DropOldest { "drop-head" } else { "reject-publish" }
}

/// The jobs queue's arguments.
fn arguments(a: &Amqp, c: Cfg) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-queue-type".into(), text("quorum"));
    t.insert("x-max-length".into(), AMQPValue::LongLongInt(i64::try_from(c.bound).unwrap_or(i64::MAX)));
    t.insert("x-overflow".into(), text(overflow(c.policy)));
    t.insert("x-dead-letter-exchange".into(), text(""));
    t.insert("x-dead-letter-routing-key".into(), text(&a.dead()));
    t
}

fn quorum() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-queue-type".into(), text("quorum"));
    t
}

/// Declares the run's two queues (as they are, when they exist with the same arguments).
pub async fn declare(a: &Amqp, s: &Session, cfg: Cfg) -> Result<(), String> {
    let ch = s.admin().await?;
    ch.queue_declare(a.dead().into(), QueueDeclareOptions::durable(), quorum()).await.map_err(|e| e.to_string())?;
    ch.queue_declare(a.jobs().into(), QueueDeclareOptions::durable(), arguments(a, cfg))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

pub async fn create(a: &Amqp, cfg: Cfg) -> Result<(), BrokerError> {
    let what = format!("queue {}", a.jobs());
    let s = a.session().map_err(|e| a.setup_error(&what, &e))?;
    let ch = s.admin().await.map_err(|e| a.setup_error(&what, &e))?;
    // An earlier run of the same name may have left the queue, with other arguments (which a
    // declaration could not change): it goes, with what it held.
    let left =
        ch.queue_delete(a.jobs().into(), QueueDeleteOptions::default()).await.map_err(|e| a.setup_error(&what, &e))?;
    if left > 0 {
        tracing::info!("queue {}: removed {left} jobs an earlier run of this name left", a.jobs());
    }
    declare(a, &s, cfg).await.map_err(|e| a.setup_error(&what, &e))?;
    ch.queue_purge(a.dead().into(), QueuePurgeOptions::default()).await.map_err(|e| a.setup_error(&what, &e))?;
    *a.declared.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cfg);
    a.qos.store(cfg.prefetch.min(MAX_QOS) as u64, Ordering::Relaxed);
    if cfg.ack_wait != crate::settings::Settings::default().ack_wait {
        tracing::info!(
            "ack_wait does not apply on RabbitMQ: a job is delivered again when its consumer's channel closes"
        );
    }
    Ok(())
}

pub async fn open(a: &Amqp) -> Result<(), BrokerError> {
    let what = format!("queue {}", a.jobs());
    let s = a.session().map_err(|e| a.setup_error(&what, &e))?;
    let ch = s.admin().await.map_err(|e| a.setup_error(&what, &e))?;
    ch.queue_declare(a.jobs().into(), QueueDeclareOptions::default().passive(), FieldTable::default())
        .await
        .map_err(|e| a.setup_error(&what, &e))?;
    Ok(())
}

/// Knob changes: a new prefetch reaches the consumer at the next fetch; what the queue cannot take
/// is refused with a message.
pub fn apply(a: &Amqp, was: Cfg, now: Cfg) -> Result<(), String> {
    follow(a, was, now);
    if now.bound != was.bound || overflow(now.policy) != overflow(was.policy) {
        let (bound, policy) = a
            .declared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map_or((was.bound, was.policy), |c| (c.bound, c.policy));
        return Err(format!(
            "queue {}: RabbitMQ cannot change a declared queue's x-max-length and x-overflow: it keeps bound {bound} \
             and {} ({policy}); the new bound and policy apply to the controller's outbox and counting \
             (a server-side policy, rabbitmqctl set_policy, can change the queue)",
            a.jobs(),
            overflow(policy),
        ));
    }
    Ok(())
}

/// A changed prefetch (lowered as well as raised) reaches this process's consumer at its next
/// fetch: the consumer is made again with the new `basic.qos`.
pub fn follow(a: &Amqp, was: Cfg, now: Cfg) {
    if now.prefetch != was.prefetch {
        a.qos.store(now.prefetch.clamp(1, MAX_QOS) as u64, Ordering::Relaxed);
    }
}

pub async fn publish(a: &Amqp, payload: Vec<u8>) -> Result<Confirm, String> {
    let s = a.session()?;
    let ch = s.publisher().await?;
    let props = BasicProperties::default().with_delivery_mode(2);
    let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
    let confirm =
        ch.basic_publish("".into(), a.jobs().into(), options, &payload, props).await.map_err(|e| e.to_string())?;
    let me = a.me.upgrade().ok_or("the adapter is gone")?;
    Ok(Box::pin(async move {
        match confirm.await {
            Ok(Confirmation::Ack(None) | Confirmation::NotRequested) => Published::Stored { dropped: me.new_drops() },
            Ok(Confirmation::Ack(Some(_))) => {
                Published::Failed(format!("queue {} is gone: the job was returned", me.jobs()))
            }
            Ok(Confirmation::Nack(_)) => {
                me.nacked.fetch_add(1, Ordering::Relaxed);
                Published::Full
            }
            Err(e) => Published::Failed(e.to_string()),
        }
    }) as Confirm)
}

impl Amqp {
    /// The drops counted since a publish last carried them.
    fn new_drops(&self) -> u64 {
        let seen = self.dropped_seen.load(Ordering::Relaxed);
        seen.saturating_sub(self.dropped_told.fetch_max(seen, Ordering::Relaxed))
    }
}

/// This process's consumer of the jobs queue.
pub struct Consuming {
    epoch: u64,
    qos: u64,
    channel: Channel,
    consumer: Consumer,
    /// A consumer given up for one with another prefetch: its deliveries are taken first.
    draining: Option<Consumer>,
    unacked: Arc<AtomicU64>,
}

/// A consumer on the current connection with the prefetch in force (made, or made again).
async fn consuming(a: &Amqp, slot: &mut Option<Consuming>, max: usize) -> Result<(), String> {
    let s = a.session()?;
    // A node learns its prefetch from its first fetch (the inbox's whole room), and follows a
    // raised one (a fetch asking more than the prefetch in force).
    let qos = match a.qos.load(Ordering::Relaxed) {
        0 => max.clamp(1, MAX_QOS) as u64,
        q if (max as u64) > q => max.min(MAX_QOS) as u64,
        q => q,
    };
    a.qos.store(qos, Ordering::Relaxed);
    match slot {
        Some(c) if c.epoch == s.epoch && c.channel.status().connected() && c.qos == qos => return Ok(()),
        Some(c) if c.epoch == s.epoch && c.channel.status().connected() => {
            // Same channel, a new consumer: the server applies a prefetch to consumers made
            // after it. The old one's deliveries stay valid on the channel.
            c.channel.basic_cancel(c.consumer.tag(), BasicCancelOptions::default()).await.map_err(|e| e.to_string())?;
            c.channel.basic_qos(qos as u16, BasicQosOptions::default()).await.map_err(|e| e.to_string())?;
            let fresh = consume(a, &c.channel).await?;
            c.draining = Some(std::mem::replace(&mut c.consumer, fresh));
            c.qos = qos;
            return Ok(());
        }
        _ => {}
    }
    let channel = s.conn.create_channel().await.map_err(|e| e.to_string())?;
    channel.basic_qos(qos as u16, BasicQosOptions::default()).await.map_err(|e| e.to_string())?;
    let consumer = consume(a, &channel).await?;
    let unacked = Arc::new(AtomicU64::new(0));
    *a.unacked.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&unacked);
    *slot = Some(Consuming { epoch: s.epoch, qos, channel, consumer, draining: None, unacked });
    Ok(())
}

async fn consume(a: &Amqp, ch: &Channel) -> Result<Consumer, String> {
    let tag = format!("{CONSUMER}-{}", a.instance);
    ch.basic_consume(a.jobs().into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())
}

/// A delivery's acknowledgement, on the channel that delivered it.
struct AmqpAck {
    acker: lapin::Acker,
    unacked: Arc<AtomicU64>,
}

impl Ack for AmqpAck {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            let r = self.acker.ack(BasicAckOptions::default()).await;
            // Acknowledged, or its channel is gone and the server has taken it back: either
            // way this process no longer holds it.
            self.unacked.fetch_sub(1, Ordering::Relaxed);
            match r {
                Ok(true) => Ok(()),
                Ok(false) => Err("its channel is gone: the broker delivers the job again".to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
    }
    // `discard` is `ack`: a rejected message would be dead-lettered and counted as a drop.
}

pub async fn fetch(a: &Amqp, max: usize, wait: Duration) -> Result<BoxStream<Delivery>, String> {
    let mut slot = Arc::clone(&a.consumer).lock_owned().await;
    if let Err(e) = consuming(a, &mut slot, max).await {
        *slot = None;
        // Away: the core asks again after a pause.
        return Err(e);
    }
    let until = tokio::time::Instant::now() + wait;
    let stream = futures_util::stream::unfold((slot, 0usize), move |(mut slot, taken)| async move {
        if taken >= max {
            return None;
        }
        let c = slot.as_mut()?;
        loop {
            let next = match c.draining.as_mut() {
                Some(d) => tokio::time::timeout_at(until, d.next()).await,
                None => tokio::time::timeout_at(until, c.consumer.next()).await,
            };
            match next {
                Err(_) => return None,
                Ok(Some(Ok(d))) => {
                    c.unacked.fetch_add(1, Ordering::Relaxed);
                    let ack = Box::new(AmqpAck { acker: d.acker, unacked: Arc::clone(&c.unacked) });
                    let delivery = Delivery { payload: d.data, redelivered: d.redelivered, seq: None, ack };
                    return Some((delivery, (slot, taken + 1)));
                }
                Ok(None) if c.draining.is_some() => c.draining = None,
                Ok(end) => {
                    if let Some(Err(e)) = end {
                        tracing::debug!("the jobs consumer ended: {e}");
                    }
                    // Its channel or connection is gone: made again at the next fetch.
                    *slot = None;
                    return None;
                }
            }
        }
    });
    Ok(Box::pin(stream))
}

pub async fn holding(a: &Amqp) -> Result<Holding, String> {
    let s = a.session()?;
    let ch = s.admin().await?;
    let q = ch
        .queue_declare(a.jobs().into(), QueueDeclareOptions::default().passive(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    let d = ch
        .queue_declare(a.dead().into(), QueueDeclareOptions::default().passive(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    a.dropped_seen.fetch_max(u64::from(d.message_count()), Ordering::Relaxed);
    let now = Instant::now();
    let nodes: u64 = {
        let mut n = a.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        n.retain(|_, (_, at)| now.saturating_duration_since(*at) < NODE_STALE);
        n.values().map(|(held, _)| held).sum()
    };
    let unacked = a.own_unacked() + nodes;
    a.unacked_max.fetch_max(unacked, Ordering::Relaxed);
    Ok(Holding { undelivered: u64::from(q.message_count()), unacked })
}

/// The run's queue gone (deleted by someone): made again, `Ok(true)`. A durable quorum queue
/// outlives a server's restart, so this is not what a restart does.
pub async fn recover(a: &Amqp, cfg: Cfg) -> Result<bool, String> {
    let s = a.session()?;
    let ch = s.admin().await?;
    if ch.queue_declare(a.jobs().into(), QueueDeclareOptions::default().passive(), FieldTable::default()).await.is_ok()
    {
        return Ok(false);
    }
    let declared = a.declared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).unwrap_or(cfg);
    declare(a, &s, declared)
        .await
        .map_err(|e| format!("queue {} is gone and could not be made again: {e}", a.jobs()))?;
    tracing::warn!("queue {} was gone: made again", a.jobs());
    Ok(true)
}

/// The dead-letter queue's count, read until two readings agree (dead-lettering is
/// asynchronous).
pub async fn dropped(a: &Amqp) -> Result<Option<u64>, String> {
    let s = a.session()?;
    let ch = s.admin().await?;
    let mut last = None;
    for _ in 0..20 {
        let d = ch
            .queue_declare(a.dead().into(), QueueDeclareOptions::default().passive(), FieldTable::default())
            .await
            .map_err(|e| e.to_string())?;
        let n = u64::from(d.message_count());
        if last == Some(n) {
            break;
        }
        last = Some(n);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(last)
}

/// Every job the queue holds: this process's consumer is closed (the server takes back what it
/// held), every other consumer waited for, then the queue read to its end.
pub async fn leftovers(a: &Amqp) -> Result<Vec<Vec<u8>>, String> {
    if let Some(c) = a.consumer.lock().await.take() {
        let _ = c.channel.close(200, "the run is over".into()).await;
        a.unacked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).store(0, Ordering::Relaxed);
    }
    let s = a.session()?;
    let ch = s.admin().await?;
    let start = Instant::now();
    loop {
        let q = ch
            .queue_declare(a.jobs().into(), QueueDeclareOptions::default().passive(), FieldTable::default())
            .await
            .map_err(|e| e.to_string())?;
        if q.consumer_count() == 0 {
            break;
        }
        if start.elapsed() > CONSUMERS_GONE {
            tracing::warn!(
                "queue {}: {} consumers still open at the end; what they hold is not read",
                a.jobs(),
                q.consumer_count()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut out = Vec::new();
    let options = BasicGetOptions { no_ack: true };
    while let Some(m) = ch.basic_get(a.jobs().into(), options).await.map_err(|e| e.to_string())? {
        out.push(m.delivery.data);
    }
    Ok(out)
}

pub async fn delete(a: &Amqp) -> Result<(), String> {
    let s = a.session()?;
    let ch = s.admin().await?;
    for q in [a.jobs(), a.dead()] {
        ch.queue_delete(q.into(), QueueDeleteOptions::default()).await.map_err(|e| e.to_string())?;
    }
    let exchange: ShortString = Topic::Control.name(&a.spec.run_name).into();
    ch.exchange_delete(exchange, lapin::options::ExchangeDeleteOptions::default()).await.map_err(|e| e.to_string())
}
