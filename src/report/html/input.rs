//! What a report is made from, read back from the files a run leaves: the run's JSON summary
//! (or a sweep's JSON) and, optionally, its CSV series. `run --report` goes through the same
//! reading as `pooltune report`, so the files always carry what the report needs.
//!
//! The series also yields the run's knob changes: a knob column that changes between two rows
//! is a change at the later row; changes on consecutive ticks are one ramp, shown as a span.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ReportError;
use crate::metrics::{Quantile, ResponseSplit, Summary};
use crate::sweep::SweepReport;

/// A report's source: one run, or one sweep.
pub enum Source {
    Run(Box<RunView>),
    Sweep(Box<SweepReport>),
}

impl Source {
    /// Reads a run's or a sweep's JSON (a sweep has `knob` and `steps`).
    ///
    /// # Errors
    /// Not JSON, or JSON that is neither a pooltune run summary nor a sweep.
    pub fn parse(json: &str) -> Result<Source, ReportError> {
        let v: Value = serde_json::from_str(json).map_err(|e| ReportError::NotJson(e.to_string()))?;
        let sweep = v.get("knob").is_some() && v.get("steps").is_some();
        let what = if sweep { "a sweep (pooltune sweep --json)" } else { "a run summary (pooltune run --json)" };
        let bad = |e: serde_json::Error| ReportError::Json(format!("not {what}: {e}"));
        if sweep {
            Ok(Source::Sweep(Box::new(serde_json::from_value(v).map_err(bad)?)))
        } else {
            Ok(Source::Run(Box::new(serde_json::from_value(v).map_err(bad)?)))
        }
    }
}

/// The parts of a run's JSON summary the report shows.
#[derive(Debug, Deserialize)]
pub struct RunView {
    #[serde(default)]
    pub command: Vec<String>,
    pub duration_s: f64,
    pub elapsed_s: f64,
    pub ended_by: String,
    pub config: Map<String, Value>,
    pub jobs: BTreeMap<String, u64>,
    pub measured_jobs: BTreeMap<String, u64>,
    pub offered_per_s: f64,
    pub throughput_per_s: f64,
    pub latency_ms: Summary,
    pub wait_ms: Summary,
    pub service_ms: Summary,
    /// Absent from JSON written before pooltune measured the distribution.
    #[serde(default)]
    pub latency_distribution_ms: Option<Vec<Quantile>>,
    #[serde(default)]
    pub response_split_ms: Option<ResponseSplit>,
    /// The exact account of the gap to theory (absent from JSON written before there was one,
    /// or when the run had none).
    #[serde(default)]
    pub account: Option<AccountView>,
    pub utilisation: f64,
    pub queue_depth: DepthView,
    pub model: Option<ModelView>,
    #[serde(default)]
    pub broker: Option<Value>,
    /// Absent from JSON written before pooltune summarised the worker count.
    #[serde(default)]
    pub adapt: Option<AdaptView>,
}

/// Who set the worker count, and the references of a run with a p99 target.
#[derive(Debug, Deserialize)]
pub struct AdaptView {
    pub algorithm: String,
    pub worker_seconds: f64,
    #[serde(default)]
    pub slo_p99_ms: Option<f64>,
    #[serde(default)]
    pub slo_attainment: Option<f64>,
    #[serde(default)]
    pub static_workers: Option<u32>,
    #[serde(default)]
    pub static_worker_seconds: Option<f64>,
    #[serde(default)]
    pub hindsight_worker_seconds: Option<f64>,
    #[serde(default)]
    pub hindsight: Vec<(f64, u32)>,
}

/// A run's account, part by part (means in ms).
#[derive(Debug, Deserialize)]
pub struct AccountView {
    pub measured: ShareView,
    pub theory: ShareView,
    pub randomness: ShareView,
    pub lateness: ShareView,
    pub inflation: ShareView,
    pub overhead: ShareView,
    pub sum_ms: f64,
}

#[derive(Debug, Deserialize)]
pub struct ShareView {
    pub mean_ms: f64,
}

impl AccountView {
    /// The parts in the order they add up.
    #[must_use]
    pub fn parts(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("theory", self.theory.mean_ms),
            ("randomness", self.randomness.mean_ms),
            ("lateness", self.lateness.mean_ms),
            ("inflation", self.inflation.mean_ms),
            ("overhead", self.overhead.mean_ms),
        ]
    }
}

#[derive(Debug, Deserialize)]
pub struct DepthView {
    pub mean: f64,
    pub max: u64,
}

/// The model's side of a run's summary.
#[derive(Debug, Deserialize)]
pub struct ModelView {
    pub predicted: Option<PredictedView>,
    #[serde(default)]
    pub compared: Vec<ComparedView>,
    pub reason: Option<String>,
    pub diagnosis: Option<String>,
    #[serde(default)]
    pub latency_distribution_ms: Option<Vec<Quantile>>,
    /// A replayed trace: `predicted` is the trace's simulation, and this the Poisson model fitted
    /// to the same mean rate and service.
    #[serde(default)]
    pub fitted: Option<PredictedView>,
    #[serde(default)]
    pub fitted_latency_distribution_ms: Option<Vec<Quantile>>,
}

impl ModelView {
    /// The run replayed a trace: its model is the trace's simulation, with a fitted model beside.
    #[must_use]
    pub fn replayed(&self) -> bool {
        self.fitted.is_some()
    }
}

#[derive(Debug, Deserialize)]
pub struct PredictedView {
    pub method: String,
    pub latency_ms_mean: Option<f64>,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct ComparedView {
    pub name: String,
    pub predicted: Option<f64>,
    pub measured: f64,
    pub diff: Option<f64>,
}

/// The per-tick series, by column.
pub struct Series {
    pub t: Vec<f64>,
    cols: BTreeMap<&'static str, Vec<f64>>,
    /// An adaptive controller's limit per tick (NaN where none ran, or the CSV has no column).
    pub limit: Vec<f64>,
    /// Knob changes (single ticks) and ramps (runs of consecutive ticks).
    pub changes: Vec<Change>,
}

/// A change of settings: at one tick (`from == to`), or a ramp over a span.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub from: f64,
    pub to: f64,
    pub what: String,
}

/// The numeric columns the report draws.
pub const NUMERIC: [&str; 13] = [
    "offered_per_s",
    "completed_per_s",
    "rejected_per_s",
    "dropped_per_s",
    "queue_depth",
    "queue_bound",
    "latency_p50_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "workers",
    "busy_workers",
    "utilisation",
    "paused",
];

/// The columns whose changes are knob changes (the settings the CSV carries).
const KNOBS: [&str; 7] = ["workers", "queue_bound", "rate", "service_mean_ms", "policy", "arrival", "service_kind"];

impl Series {
    /// Parses the CSV a run writes (`--csv`); other columns are ignored.
    ///
    /// # Errors
    /// A missing column or a cell that is not a number, naming the line and the column.
    pub fn parse(csv: &str) -> Result<Series, ReportError> {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let col = |name: &str| {
            header.iter().position(|h| *h == name).ok_or_else(|| {
                ReportError::Csv(format!("no column '{name}' in the header; expected the CSV of pooltune run --csv"))
            })
        };
        let t_at = col("t_s")?;
        let at: Vec<(&'static str, usize)> =
            NUMERIC.iter().map(|n| col(n).map(|i| (*n, i))).collect::<Result<_, _>>()?;
        let knob_at: Vec<(&str, usize)> = KNOBS.iter().map(|n| col(n).map(|i| (*n, i))).collect::<Result<_, _>>()?;
        let limit_at = col("limit").ok();
        let mut s = Series {
            t: Vec::new(),
            cols: NUMERIC.iter().map(|n| (*n, Vec::new())).collect(),
            limit: Vec::new(),
            changes: Vec::new(),
        };
        let mut last: Option<Vec<String>> = None;
        let mut ticks_changed: Vec<(usize, String)> = Vec::new();
        for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').collect();
            let num = |i: usize, name: &str| -> Result<f64, ReportError> {
                cells
                    .get(i)
                    .and_then(|c| c.parse::<f64>().ok())
                    .ok_or_else(|| ReportError::Csv(format!("line {}: column '{name}' is not a number", n + 2)))
            };
            let t = num(t_at, "t_s")?;
            s.t.push(t);
            for (name, i) in &at {
                let v = num(*i, name)?;
                s.cols.get_mut(name).expect("every numeric column has a vector").push(v);
            }
            s.limit.push(limit_at.and_then(|i| cells.get(i)).and_then(|c| c.parse().ok()).unwrap_or(f64::NAN));
            let knobs: Vec<String> = knob_at.iter().map(|(_, i)| cells.get(*i).unwrap_or(&"").to_string()).collect();
            if let Some(prev) = &last {
                let what: Vec<String> = knob_at
                    .iter()
                    .zip(prev.iter().zip(&knobs))
                    .filter(|(_, (a, b))| a != b)
                    .map(|((name, _), (a, b))| format!("{} {a} → {b}", name.replace('_', " ")))
                    .collect();
                if !what.is_empty() {
                    ticks_changed.push((s.t.len() - 1, what.join(", ")));
                }
            }
            last = Some(knobs);
        }
        s.changes = group(&s.t, &ticks_changed);
        Ok(s)
    }

    /// A numeric column (one of [`NUMERIC`]).
    #[must_use]
    pub fn col(&self, name: &str) -> &[f64] {
        self.cols.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Changes on consecutive ticks (row indices) become one ramp from the first to the last; a
/// lone change stays a single tick. A ramp's text is its first and last change.
fn group(t: &[f64], ticks: &[(usize, String)]) -> Vec<Change> {
    let mut out: Vec<(usize, usize, String, String)> = Vec::new();
    for (i, what) in ticks {
        let i = *i;
        match out.last_mut() {
            Some(last) if last.1 + 1 == i => {
                last.1 = i;
                last.3.clone_from(what);
            }
            _ => out.push((i, i, what.clone(), what.clone())),
        }
    }
    out.into_iter()
        .map(|(a, b, first, last)| Change {
            from: t[a],
            to: t[b],
            what: if a == b { first } else { format!("ramp: {first} … {last}") },
        })
        .collect()
}

/// At most `n` points of `(x, y)`: each bucket of consecutive points becomes one, at its mean
/// x, with its mean or (`peak`) its largest y, so a short spike survives the thinning.
#[must_use]
pub fn thin(x: &[f64], y: &[f64], n: usize, peak: bool) -> Vec<(f64, f64)> {
    let len = x.len().min(y.len());
    let per = len.div_ceil(n.max(1)).max(1);
    (0..len)
        .step_by(per)
        .map(|a| {
            let b = (a + per).min(len);
            #[allow(clippy::cast_precision_loss)]
            let k = (b - a) as f64;
            let xm = x[a..b].iter().sum::<f64>() / k;
            let ys = &y[a..b];
            let ym =
                if peak { ys.iter().copied().fold(f64::NEG_INFINITY, f64::max) } else { ys.iter().sum::<f64>() / k };
            (xm, ym)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::report::CSV_HEADER;

    fn row(t: f64, workers: u32, rate: u32) -> String {
        let mut cells: Vec<String> = CSV_HEADER.split(',').map(|_| "0".to_string()).collect();
        let header: Vec<&str> = CSV_HEADER.split(',').collect();
        let set = |cells: &mut Vec<String>, name: &str, v: String| {
            let i = header.iter().position(|h| *h == name).unwrap();
            cells[i] = v;
        };
        set(&mut cells, "t_s", format!("{t:.3}"));
        set(&mut cells, "workers", workers.to_string());
        set(&mut cells, "rate", rate.to_string());
        set(&mut cells, "policy", "block".into());
        cells.join(",")
    }

    #[test]
    fn knob_changes_are_read_from_the_series_and_ramps_grouped() {
        let mut csv = format!("{CSV_HEADER}\n");
        let rates = [100, 100, 100, 200, 200, 300, 400, 500, 500, 500];
        for (k, r) in rates.iter().enumerate() {
            let workers = if k >= 9 { 8 } else { 4 };
            csv.push_str(&row(k as f64 * 0.25, workers, *r));
            csv.push('\n');
        }
        let s = Series::parse(&csv).unwrap();
        assert_eq!(s.t.len(), 10);
        assert_eq!(s.col("workers")[9], 8.0);
        let want = vec![
            Change { from: 0.75, to: 0.75, what: "rate 100 → 200".into() },
            Change { from: 1.25, to: 1.75, what: "ramp: rate 200 → 300 … rate 400 → 500".into() },
            Change { from: 2.25, to: 2.25, what: "workers 4 → 8".into() },
        ];
        assert_eq!(s.changes, want);
    }

    #[test]
    fn a_bad_series_names_its_line_and_column() {
        let bad = format!("{CSV_HEADER}\n{}\n", row(0.0, 4, 100).replacen("0.000", "soon", 1));
        let e = Series::parse(&bad).err().unwrap().to_string();
        assert!(e.contains("line 2") && e.contains("t_s"), "{e}");
        let e = Series::parse("t_s,workers\n0,1\n").err().unwrap().to_string();
        assert!(e.contains("no column 'offered_per_s'"), "{e}");
    }

    #[test]
    fn thinning_keeps_peaks_and_the_point_budget() {
        let x: Vec<f64> = (0..1000).map(f64::from).collect();
        let mut y = vec![1.0; 1000];
        y[537] = 50.0;
        let p = thin(&x, &y, 100, true);
        assert_eq!(p.len(), 100);
        assert_eq!(p.iter().map(|q| q.1).fold(0.0, f64::max), 50.0);
        let m = thin(&x, &y, 100, false);
        assert!(m.iter().all(|q| q.1 <= 5.9 + 1e-9), "a mean spreads the spike: {m:?}");
        assert_eq!(thin(&x[..3], &y[..3], 100, false).len(), 3);
    }
}
