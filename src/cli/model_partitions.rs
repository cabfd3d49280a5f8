//! `pooltune model --partitions P`: the queueing model of a partitioned topic (Kafka's), from
//! the same flags as an open-loop `pooltune model` plus the layout: each partition consumed in
//! order, each consumer's workers over its partitions unordered, and one shared pool, side by
//! side, with what ordering costs in p99 (the pooling loss).

use std::fmt::Write as _;
use std::process::ExitCode;

use super::args::ModelArgs;
use super::{BadInput, Outcome};
use crate::model::partitions::{Layout, Mixed, predict_partitioned};
use crate::model::{Inputs, ModelError};

/// The layout `a` gives, `partitions` being the flag that asked for it.
fn layout(a: &ModelArgs, partitions: u32) -> Layout {
    Layout {
        partitions,
        consumers: a.consumers.unwrap_or(1),
        keys: a.keys.unwrap_or(1000),
        key_skew: a.key_skew.unwrap_or(0.0),
    }
}

fn row(out: &mut String, label: &str, m: &Mixed, queue: &str) {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    let busiest = match queue {
        "" => format!("at ρ {:.3}", m.busiest_rho),
        _ => format!("busiest {queue} {} at ρ {:.3}", m.busiest, m.busiest_rho),
    };
    if m.stable {
        let _ = writeln!(out, "{label:<30} {:>10} {:>10}   {busiest}", f(m.latency_ms_mean), f(m.latency_ms_p99));
    } else {
        let growth = m.growth_per_s.unwrap_or(0.0);
        let _ = writeln!(out, "{label:<30} {:>21}   {busiest}", format!("grows {growth:.1} jobs/s"));
    }
}

/// Prints the model of the topic for the open-loop inputs `i`.
pub fn run(a: &ModelArgs, i: &Inputs, partitions: u32) -> Outcome {
    let layout = layout(a, partitions);
    let p = predict_partitioned(i, &layout).map_err(|ModelError::Invalid(m)| BadInput(m))?;
    if a.json {
        let mut v = serde_json::to_value(&p)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "layout".into(),
                serde_json::json!({
                    "partitions": layout.partitions,
                    "consumers": layout.consumers,
                    "workers_per_consumer": i.workers,
                    "keys": layout.keys,
                    "key_skew": layout.key_skew,
                }),
            );
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "topic              {} partitions, {} keys (Zipf s = {}), {} consumer(s) × {} workers",
        layout.partitions, layout.keys, layout.key_skew, layout.consumers, i.workers
    );
    // In order, the busiest queue is the partition with the largest share.
    let hot = p.ordered.busiest;
    let _ = writeln!(
        out,
        "busiest partition  {hot}: {:.1}% of the jobs (an even split is {:.1}%)",
        p.shares[hot as usize] * 100.0,
        100.0 / f64::from(layout.partitions)
    );
    let _ = writeln!(out, "{:<30} {:>10} {:>10}", "consumed", "mean ms", "p99 ms");
    row(&mut out, "in order (a worker/partition)", &p.ordered, "partition");
    row(&mut out, "unordered (pool per consumer)", &p.unordered, "consumer");
    row(&mut out, "one shared pool", &p.pooled, "");
    match p.pooling_loss {
        Some(x) => {
            let _ = writeln!(out, "pooling loss       in order, p99 is {x:.2}× the shared pool's");
        }
        None if !p.ordered.stable => {
            let _ = writeln!(
                out,
                "pooling loss       in order, partition {} cannot keep up (ρ {:.3}) however many workers the group has",
                p.ordered.busiest, p.ordered.busiest_rho
            );
        }
        None => {}
    }
    if let Some(n) = &p.note {
        let _ = writeln!(out, "note: {n}");
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
