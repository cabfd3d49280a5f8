//! A pooltune run's JSON (`pooltune run --json`) as a service sample. The JSON keeps its service
//! times' count, mean, p50, p90, p99, p99.9 and max (`service_ms`, read from its HDR histogram),
//! not the histogram itself: those figures are the sample ([`RunPercentiles`], which the sample
//! reader hands on as `SampleData::Percentiles`; the model makes a quantile function of them,
//! see `model::sample`).
//!
//! A file is taken for a JSON document when it parses whole as one JSON object and either holds
//! one of pooltune's keys or spans more than one line; a one-line object without them is a
//! JSON-lines sample of one line, read as such.

use serde_json::{Map, Value};

use super::error::TraceError;

/// A run's service-time percentiles: (u, nanoseconds) for u = 0.5, 0.9, 0.99, 0.999 and 1 (the
/// largest), their mean in nanoseconds and how many times they summarise.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RunPercentiles {
    pub points: Vec<(f64, f64)>,
    pub mean: f64,
    pub count: u64,
}

/// The keys a pooltune run's or sweep's JSON has at its top.
const POOLTUNE_KEYS: [&str; 6] = ["service_ms", "config", "ended_by", "latency_ms", "steps", "knob"];

/// The percentiles `service_ms` holds, with their quantile.
const POINTS: [(f64, &str); 5] = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p999"), (1.0, "max")];

/// The run's service percentiles, when `bytes` are one JSON document; `None` for anything else
/// (JSON lines, CSV, one value per line).
pub(super) fn read(file: &str, bytes: &[u8]) -> Option<Result<RunPercentiles, TraceError>> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes).trim_ascii();
    if !text.starts_with(b"{") {
        return None;
    }
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(text) else { return None };
    let ours = POOLTUNE_KEYS.iter().any(|k| doc.contains_key(*k));
    (ours || text.contains(&b'\n')).then(|| percentiles(file, &doc))
}

fn percentiles(file: &str, doc: &Map<String, Value>) -> Result<RunPercentiles, TraceError> {
    let fail = |why: String| TraceError::NoServiceHistogram { file: file.into(), why };
    if doc.contains_key("steps") && doc.contains_key("knob") {
        return Err(fail("this is a sweep's JSON (pooltune sweep --json), which keeps no service times".into()));
    }
    let Some(Value::Object(s)) = doc.get("service_ms") else {
        return Err(fail("the JSON document has no service_ms object (the service times' percentiles)".into()));
    };
    let shown = |key: &str| s.get(key).map_or_else(|| "missing".to_string(), Value::to_string);
    let ms = |key: &str| {
        s.get(key).and_then(Value::as_f64).filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
            fail(format!("service_ms.{key} is {}; expected a number of milliseconds, 0 or more", shown(key)))
        })
    };
    let count = s
        .get("count")
        .and_then(Value::as_u64)
        .ok_or_else(|| fail(format!("service_ms.count is {}; expected the number of service times", shown("count"))))?;
    if count == 0 {
        return Err(fail("the run measured no service times (service_ms.count is 0)".into()));
    }
    let mut points = Vec::with_capacity(POINTS.len());
    for (u, key) in POINTS {
        points.push((u, ms(key)? * 1e6));
    }
    Ok(RunPercentiles { points, mean: ms("mean")? * 1e6, count })
}
