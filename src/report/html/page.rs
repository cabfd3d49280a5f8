//! The pieces every report page is made of: escaping, the page's head and style, a chart's
//! figure, a table, and the command and settings a run or sweep used (the knobs the run reads
//! first, the rest folded beneath; a service sample in one line).

use std::fmt::Write as _;

use crate::settings::{Knob, Settings};

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;color:#222;max-width:960px;margin:2em auto;padding:0 1em}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;word-break:break-all}\
figure.chart{margin:1em 0;break-inside:avoid}figure.chart svg{max-width:100%;height:auto}\
figcaption{font-size:.9em;color:#444}.note{color:#555;font-style:italic}\
@media print{body{max-width:none;margin:0}h2{break-after:avoid}}";

pub(super) fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    )
}

pub(super) fn figure(out: &mut String, id: &str, svg: &str, caption: &str) {
    let _ =
        writeln!(out, "<figure class=\"chart\" id=\"{id}\">{svg}<figcaption>{}</figcaption></figure>", esc(caption));
}

pub(super) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

pub(super) fn command_and_settings(
    out: &mut String,
    command: &[String],
    settings: &serde_json::Map<String, serde_json::Value>,
) {
    out.push_str("<h2>Command and settings</h2>\n");
    if !command.is_empty() {
        let _ = writeln!(out, "<pre>{}</pre>", esc(&command.join(" ")));
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "—".into(),
        serde_json::Value::Object(o) if o.contains_key("mean_ms") => sample_text(o),
        v => v.to_string(),
    };
    // The knobs this run reads first; the rest (burst lengths for Poisson arrivals, prefetch
    // without a broker) folded away beneath, still there for whoever looks.
    let mut s = Settings::default();
    for (k, v) in settings {
        if let Ok(knob) = Knob::parse(k, &text(v)) {
            knob.apply(&mut s);
        }
    }
    let broker = command.iter().any(|a| a == "--broker" || a.starts_with("--broker="));
    let (used, unused): (Vec<_>, Vec<_>) = settings.iter().partition(|(k, _)| s.knob_applies(k, broker));
    let rows = |kv: Vec<(&String, &serde_json::Value)>| -> Vec<Vec<String>> {
        kv.into_iter().map(|(k, v)| vec![k.replace('_', " "), text(v)]).collect()
    };
    table(out, &["setting", "value"], &rows(used));
    if !unused.is_empty() {
        let _ = writeln!(out, "<details><summary>Not used by this run ({})</summary>", unused.len());
        table(out, &["setting", "value"], &rows(unused));
        out.push_str("</details>\n");
    }
}

/// A service sample as the run's JSON describes it (`config.service_sample`), in one line.
fn sample_text(o: &serde_json::Map<String, serde_json::Value>) -> String {
    let num = |k: &str| o.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    let count = o.get("count").map_or_else(String::new, ToString::to_string);
    let what = match o.get("kind").and_then(serde_json::Value::as_str) {
        Some("values") => format!("{count} values"),
        _ => format!("the percentiles of a run's {count} service times"),
    };
    format!(
        "{}: {what}, mean {:.3} ms, cv {:.2}, p99 {:.3} ms",
        o.get("file").and_then(serde_json::Value::as_str).unwrap_or("?"),
        num("mean_ms"),
        num("cv"),
        num("p99_ms")
    )
}

pub(super) fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v:.digits$}"))
}
