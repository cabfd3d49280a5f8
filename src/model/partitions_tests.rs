//! The partitioner against Kafka's own vectors, the shares and the assignment, and the model of
//! ordered processing against a simulation of it.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp};

use super::*;

/// Kafka's `UtilsTest.testMurmur2`: the crate's `MurmurHash2` with Kafka's seed is Kafka's.
#[test]
fn the_hash_is_kafkas() {
    let vectors: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        (b"abc", 479_470_107),
    ];
    for (data, expect) in vectors {
        #[allow(clippy::cast_possible_wrap)]
        let got = murmur2::murmur2(data, murmur2::KAFKA_SEED) as i32;
        assert_eq!(got, expect, "{}", String::from_utf8_lossy(data));
    }
}

/// The partitions kafka-python's default partitioner (a port of Java's) gives integer keys sent
/// big-endian, as `IntegerSerializer` sends them (computed with kafka-python 3.0.12).
#[test]
fn integer_keys_land_where_a_java_producer_puts_them() {
    let eight: Vec<u32> = (0..12).map(|k| partition_of(k, 8)).collect();
    assert_eq!(eight, [0, 0, 3, 7, 7, 6, 3, 3, 2, 0, 5, 7]);
    let seven: Vec<u32> = [0, 1, 100, 999, 123_456].into_iter().map(|k| partition_of(k, 7)).collect();
    assert_eq!(seven, [6, 2, 4, 0, 3]);
}

#[test]
fn shares_follow_zipf_and_add_up() {
    let two = key_shares(2, 1.0);
    assert!((two[0] - 2.0 / 3.0).abs() < 1e-12 && (two[1] - 1.0 / 3.0).abs() < 1e-12, "{two:?}");
    assert!(key_shares(5, 0.0).iter().all(|&s| (s - 0.2).abs() < 1e-12));
    for skew in [0.0, 0.5, 1.0, 2.0] {
        let p = partition_shares(1000, skew, 8);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "skew {skew}: {p:?}");
    }
    // Key 0 is the hottest; its partition (0, above) holds at least its share.
    let hot = partition_shares(1000, 1.0, 8);
    assert!(hot[0] >= key_shares(1000, 1.0)[0]);
}

#[test]
fn range_assignment_gives_the_first_consumers_one_more() {
    assert_eq!(range_assignment(8, 3), [0..3, 3..6, 6..8]);
    assert_eq!(range_assignment(8, 1), vec![0..8]);
    assert_eq!(range_assignment(2, 3), [0..1, 1..2, 2..2]);
}

fn five_ms(rate: f64, workers: u32) -> Inputs {
    Inputs::mmc(rate, 0.005, workers)
}

#[test]
fn one_partition_in_order_is_the_single_worker_queue() {
    let layout = Layout { partitions: 1, consumers: 1, keys: 10, key_skew: 0.0 };
    let p = predict_partitioned(&five_ms(140.0, 1), &layout).unwrap();
    let m1 = super::super::predict(&five_ms(140.0, 1)).unwrap();
    let (a, b) = (p.ordered.latency_ms_p99.unwrap(), m1.latency_ms_p99.unwrap());
    assert!((a - b).abs() < 1e-6 * b, "{a} against {b}");
    // One consumer with one worker: unordered and the shared pool are the same queue.
    assert!((p.unordered.latency_ms_p99.unwrap() - b).abs() < 1e-6 * b);
    assert!((p.pooling_loss.unwrap() - 1.0).abs() < 1e-6);
}

#[test]
fn a_hot_key_makes_its_partition_grow_while_the_pool_keeps_up() {
    // ρ 0.7 over 8 workers; key 0 alone draws 1/H(1000) = 13.4% at skew 1, and its partition
    // more: over one worker's 200/s.
    let layout = Layout { partitions: 8, consumers: 1, keys: 1000, key_skew: 1.0 };
    let p = predict_partitioned(&five_ms(1120.0, 8), &layout).unwrap();
    assert!(!p.ordered.stable && p.ordered.growth_per_s.unwrap() > 0.0, "{:?}", p.ordered);
    assert_eq!(p.ordered.busiest, 0, "key 0's partition: {:?}", p.shares);
    assert!(p.pooled.stable && p.unordered.stable && p.pooling_loss.is_none());
}

#[test]
fn bad_layouts_are_refused_with_what_is_accepted() {
    let i = five_ms(100.0, 2);
    for (layout, word) in [
        (Layout { partitions: 0, consumers: 1, keys: 1, key_skew: 0.0 }, "partitions 0"),
        (Layout { partitions: 1, consumers: 0, keys: 1, key_skew: 0.0 }, "consumers 0"),
        (Layout { partitions: 1, consumers: 1, keys: 0, key_skew: 0.0 }, "keys 0"),
        (Layout { partitions: 1, consumers: 1, keys: 1, key_skew: -1.0 }, "key skew -1"),
    ] {
        let ModelError::Invalid(m) = predict_partitioned(&i, &layout).unwrap_err();
        assert!(m.contains(word), "{m}");
    }
}

/// Each partition in order, simulated exactly: Poisson arrivals, each job's key drawn by the
/// shares, its partition by the partitioner, served FIFO by that partition's one server with an
/// exponential service. Returns the p99 response time in milliseconds.
fn simulate_ordered(rate: f64, layout: &Layout, jobs: usize, seed: u64) -> f64 {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (gap, service) = (Exp::new(rate).unwrap(), Exp::new(200.0).unwrap());
    let cumulative: Vec<f64> = key_shares(layout.keys, layout.key_skew)
        .iter()
        .scan(0.0, |acc, s| {
            *acc += s;
            Some(*acc)
        })
        .collect();
    let partition: Vec<u32> = (0..layout.keys).map(|k| partition_of(k, layout.partitions)).collect();
    let mut free_at = vec![0.0f64; layout.partitions as usize];
    let (mut now, mut responses) = (0.0, Vec::with_capacity(jobs));
    for _ in 0..jobs {
        now += gap.sample(&mut rng);
        let u: f64 = rng.random();
        let key = cumulative.partition_point(|&c| c < u).min(cumulative.len() - 1);
        let p = partition[key] as usize;
        free_at[p] = free_at[p].max(now) + service.sample(&mut rng);
        responses.push(free_at[p] - now);
    }
    responses.sort_by(f64::total_cmp);
    responses[jobs * 99 / 100] * 1e3
}

/// The ordered model against its simulation: 8 partitions, 8 workers, ρ 0.7, 1,000 keys, at
/// skew 0 and 0.5 (at 1.0 the hot partition is unstable, above). Poisson arrivals thinned by
/// key are Poisson, and M/M/1 response times are exponential, so the mixture is exact here and
/// only the simulation's own spread separates them.
///
/// Tolerance: 12 seeds of 200,000 jobs; successive responses in a queue are correlated, so the
/// spread is taken from the seeds themselves: the seeds' mean p99 within 4 standard errors
/// (4·sd/√12) of the model, plus 0.5% for the order statistic's own bias at n = 200,000.
#[test]
fn the_ordered_model_is_what_a_simulation_of_it_measures() {
    for skew in [0.0, 0.5] {
        let layout = Layout { partitions: 8, consumers: 1, keys: 1000, key_skew: skew };
        let model = predict_partitioned(&five_ms(1120.0, 8), &layout).unwrap();
        let expect = model.ordered.latency_ms_p99.expect("stable at this skew");
        let p99s: Vec<f64> = (1..=12).map(|seed| simulate_ordered(1120.0, &layout, 200_000, seed)).collect();
        let n = p99s.len() as f64;
        let mean = p99s.iter().sum::<f64>() / n;
        let sd = (p99s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let allowed = 4.0 * sd / n.sqrt() + 0.005 * expect;
        eprintln!("skew {skew}: simulated p99 {mean:.2} ms (sd {sd:.2}), model {expect:.2} ± {allowed:.2}");
        assert!(
            (mean - expect).abs() <= allowed,
            "skew {skew}: simulated p99 {mean:.2} ms (sd {sd:.2}) against the model's {expect:.2} ± {allowed:.2}"
        );
        // The lesson itself: 8 queues of one worker against one of 8.
        let loss = model.pooling_loss.unwrap();
        assert!(loss > 2.0, "skew {skew}: ordered {expect:.1} ms is only {loss:.2}× the shared pool's");
    }
}
