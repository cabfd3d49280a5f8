//! The bare loops `cargo bench --bench broker` sets pooltune beside: each broker's own client
//! doing the same work with nothing of pooltune's, as fast as it can. Each takes the broker's
//! URL, a run number (its queue's name) and the run's length, and gives completed jobs/s.
//!
//! The shapes are pooltune's: a publisher with up to 1024 answers (acknowledgements,
//! confirms) outstanding, and one consumer taking 64 at a time (NATS: a pull of 64; Redis:
//! `XREADGROUP … COUNT 64`; RabbitMQ: `basic.qos` 64) and acknowledging what it took.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;

/// The bare loop on NATS JetStream: a memory stream of work-queue retention bounded at 1000,
/// a pull consumer, each message acknowledged.
pub fn run_bare_nats(url: &str, n: u32, run: Duration) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let client = async_nats::connect(url).await.unwrap();
        let js = jetstream::new(client);
        let name = format!("BARE{n}");
        let s = js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("bare.{n}")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::Memory,
                max_messages: 1000,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer: jetstream::consumer::PullConsumer = s
            .create_consumer(pull::Config {
                durable_name: Some("w".into()),
                max_ack_pending: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let stop = Instant::now() + run;
        let js2 = js.clone();
        let subject = format!("bare.{n}");
        let publisher = tokio::spawn(async move {
            let mut acks = std::collections::VecDeque::new();
            while Instant::now() < stop {
                let ack = js2.publish(subject.clone(), bytes::Bytes::from_static(&[0u8; 41])).await.unwrap();
                acks.push_back(ack);
                if acks.len() >= 1024 {
                    let _ = acks.pop_front().unwrap().await;
                }
            }
            for a in acks {
                let _ = a.await;
            }
        });
        let start = Instant::now();
        let mut done = 0u64;
        while Instant::now() < stop {
            let mut batch =
                consumer.batch().max_messages(64).expires(Duration::from_millis(100)).messages().await.unwrap();
            while let Some(Ok(m)) = batch.next().await {
                let _ = m.ack().await;
                done += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        publisher.abort();
        let _ = js.delete_stream(&name).await;
        done as f64 / secs
    })
}

/// The bare loop on Redis: a publisher `XADD`ing with up to 1024 answers outstanding (the
/// connection pipelines them), and a consumer reading 64 at a time
/// (`XREADGROUP … COUNT 64 BLOCK 100`) and acknowledging each batch with one `XACK` and one
/// `XDEL`, as pooltune's acknowledger does. No bound is checked at publish (pooltune's script
/// checks one): the stream grows as the publisher runs ahead.
pub fn run_bare_redis(url: &str, n: u32, run: Duration) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let client = redis::Client::open(url).unwrap();
        let publish = client.get_multiplexed_async_connection().await.unwrap();
        let mut read = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("bare:{n}");
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("w")
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut read)
            .await
            .unwrap();
        let stop = Instant::now() + run;
        let k = key.clone();
        let publisher = tokio::spawn(async move {
            let mut answers = std::collections::VecDeque::new();
            while Instant::now() < stop {
                let mut c = publish.clone();
                let cmd = redis::cmd("XADD").arg(&k).arg("*").arg("j").arg(&[0u8; 41][..]).to_owned();
                answers.push_back(tokio::spawn(async move { cmd.query_async::<String>(&mut c).await }));
                if answers.len() >= 1024 {
                    let _ = answers.pop_front().unwrap().await;
                }
            }
        });
        let start = Instant::now();
        let mut done = 0u64;
        while Instant::now() < stop {
            let v: redis::Value = redis::cmd("XREADGROUP")
                .arg(&["GROUP", "w", "c", "COUNT", "64", "BLOCK", "100", "STREAMS"])
                .arg(&key)
                .arg(">")
                .query_async(&mut read)
                .await
                .unwrap();
            let ids = entry_ids(&v);
            if ids.is_empty() {
                continue;
            }
            let _: () = redis::pipe()
                .atomic()
                .cmd("XACK")
                .arg(&key)
                .arg("w")
                .arg(&ids)
                .ignore()
                .cmd("XDEL")
                .arg(&key)
                .arg(&ids)
                .ignore()
                .query_async(&mut read)
                .await
                .unwrap();
            done += ids.len() as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        publisher.abort();
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut read).await.unwrap();
        done as f64 / secs
    })
}

/// The entry ids in an `XREADGROUP` answer.
fn entry_ids(v: &redis::Value) -> Vec<Vec<u8>> {
    use redis::Value::{Array, BulkString};
    let Array(streams) = v else { return Vec::new() };
    streams
        .iter()
        .filter_map(|s| if let Array(kv) = s { kv.get(1) } else { None })
        .flat_map(|entries| if let Array(e) = entries { e.as_slice() } else { &[] })
        .filter_map(|e| if let Array(pair) = e { pair.first() } else { None })
        .filter_map(|id| if let BulkString(b) = id { Some(b.clone()) } else { None })
        .collect()
}

/// The bare loop on RabbitMQ: a quorum queue with `x-max-length` 1000 and `reject-publish`,
/// persistent messages with publisher confirms, a consumer with `basic.qos` 64 acknowledging
/// each delivery.
pub fn run_bare_amqp(url: &str, n: u32, run: Duration) -> f64 {
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await.unwrap();
        let (publish, consume) = (conn.create_channel().await.unwrap(), conn.create_channel().await.unwrap());
        publish.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        let queue = format!("bare{n}");
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(1000));
        args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        publish.queue_declare(queue.clone().into(), QueueDeclareOptions::durable(), args).await.unwrap();
        consume.basic_qos(64, BasicQosOptions::default()).await.unwrap();
        let mut deliveries = consume
            .basic_consume(queue.clone().into(), "w".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .unwrap();
        let stop = Instant::now() + run;
        let (p, q) = (publish.clone(), queue.clone());
        let publisher = tokio::spawn(async move {
            let mut confirms = std::collections::VecDeque::new();
            let persistent = lapin::BasicProperties::default().with_delivery_mode(2);
            while Instant::now() < stop {
                let options = BasicPublishOptions::default();
                let c = p.basic_publish("".into(), q.clone().into(), options, &[0u8; 41], persistent.clone()).await;
                confirms.push_back(c.unwrap());
                if confirms.len() >= 1024 {
                    let _ = confirms.pop_front().unwrap().await;
                }
            }
            for c in confirms {
                let _ = c.await;
            }
        });
        let start = Instant::now();
        let mut done = 0u64;
        while Instant::now() < stop {
            match tokio::time::timeout(Duration::from_millis(100), deliveries.next()).await {
                Ok(Some(Ok(d))) => {
                    let _ = d.ack(BasicAckOptions::default()).await;
                    done += 1;
                }
                Ok(_) => break,
                Err(_) => {}
            }
        }
        let secs = start.elapsed().as_secs_f64();
        publisher.abort();
        let _ = publish.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        done as f64 / secs
    })
}
