//! What `/metrics` says: every family, encoded by prometheus-client from the latest
//! [`Snapshot`] at each scrape (a [`Collector`], so nothing is observed twice).
//!
//! Which snapshot fields feed what, and why they can be trusted not to go backwards:
//! - counters from [`Snapshot::totals`] (the whole run, warm-up included, never reset) and the
//!   broker's and nodes' run-long counts; each is also held at the highest value it has had,
//!   so no scrape ever sees a counter fall (a duplicate delivery subtracted late, say);
//! - histograms from [`Snapshot::run_dist`] (the whole run, every tick merged by the engine);
//! - gauges from the tick: depth, bound, workers, the adaptive limit;
//! - the model from the measured window ([`Snapshot::measured`], which the dashboard resets at
//!   each knob change): gauges, present only while the model has an answer.
//!
//! The family names and what each says are listed in the README ("Prometheus and Grafana"),
//! which a test checks against a live `/metrics`.

use std::collections::HashMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::buckets::{Layout, UNKNOWN_SCALE};
use crate::metrics::{Snapshot, Summary};

type Labels = Vec<(&'static str, String)>;

/// The exporter's view of the run: the latest snapshot, the buckets, the counters' floors.
#[derive(Debug, Default)]
pub struct Exported {
    snap: Option<Snapshot>,
    layout: Option<Layout>,
    /// The highest value each counter series has been exported with.
    floors: HashMap<String, u64>,
    /// Export the model's predictions (not on a worker node: the model is the controller's).
    model: bool,
}

/// The collector registered with prometheus-client: the shared [`Exported`].
#[derive(Debug, Clone, Default)]
pub struct Families(pub std::sync::Arc<std::sync::Mutex<Exported>>);

impl Collector for Families {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.encode(&mut e)
    }
}

impl Exported {
    #[must_use]
    pub fn new(model: bool) -> Exported {
        Exported { model, ..Exported::default() }
    }

    /// Takes a new snapshot; the first that carries the run's distributions fixes the buckets.
    pub fn update(&mut self, snap: Snapshot) {
        if self.layout.is_none() && snap.run_dist.is_some() {
            let scale = if snap.custom_work { UNKNOWN_SCALE } else { snap.settings.service };
            self.layout = Some(Layout::around(scale));
        }
        self.snap = Some(snap);
    }

    /// `v`, or the highest value the series `key` had before if that is higher.
    fn floor(&mut self, key: String, v: u64) -> u64 {
        let f = self.floors.entry(key).or_default();
        *f = (*f).max(v);
        *f
    }

    fn encode(&mut self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let Some(s) = self.snap.take() else { return Ok(()) };
        let out = self.encode_snapshot(e, &s);
        self.snap = Some(s);
        out
    }

    fn encode_snapshot(&mut self, e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
        let t = &s.totals;
        let outcomes = [
            ("offered", t.offered),
            ("completed", t.completed),
            ("failed", t.failed),
            ("timed_out", t.timed_out),
            ("rejected", t.rejected),
            ("dropped", t.dropped),
            ("abandoned", t.abandoned),
        ];
        let jobs = outcomes.map(|(o, n)| (vec![("outcome", o.to_string())], self.floor(format!("jobs {o}"), n)));
        counters(e, "jobs", "Jobs by outcome over the run (timed_out and panics are part of failed)", &jobs)?;
        gauge1(e, "jobs_in_flight", "Jobs admitted and not finished: queued plus in service", s.in_flight as f64)?;
        gauge1(e, "queue_depth", "Jobs the queue holds now (over a broker: the run's stream)", s.queue.depth as f64)?;
        gauge1(e, "queue_bound", "The queue's bound (--queue)", s.queue.bound as f64)?;
        let workers = [("set", s.settings.workers), ("alive", s.live_workers), ("busy", s.busy_workers as usize)];
        let workers = workers.map(|(k, n)| (vec![("state", k.to_string())], n as f64));
        gauges(e, "workers", "This process's workers: set (the knob), alive (tasks), busy (in a job)", None, &workers)?;
        if let Some(a) = &s.adapt {
            gauge1(e, "adaptive_limit", "The adaptive controller's limit (--adapt), as it holds it", a.limit)?;
        }
        if let (Some(d), Some(layout)) = (&s.run_dist, &self.layout) {
            for (name, help, part) in [
                ("response", "Response time of the run's successful jobs: end − intended arrival", &d.response),
                ("wait", "Wait of the run's successful jobs: start − intended arrival", &d.wait),
                ("service", "Service time of the run's successful jobs: end − start", &d.service),
            ] {
                let mut m = e.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
                m.encode_histogram::<NoLabelSet>(part.sum_ns as f64 / 1e9, part.count(), &layout.fill(part), None)?;
            }
        }
        if self.model {
            model(e, s)?;
        }
        self.nodes(e, s)?;
        self.broker(e, s)
    }

    /// A broker run's worker nodes, one series each by `node`.
    fn nodes(&mut self, e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
        if s.nodes.is_empty() {
            return Ok(());
        }
        let node = |n: &crate::metrics::NodeView| vec![("node", n.name.clone())];
        let with = |n: &crate::metrics::NodeView, k: &'static str, v: &str| {
            let mut l = node(n);
            l.push((k, v.to_string()));
            l
        };
        let mut jobs = Vec::new();
        let mut redelivered = Vec::new();
        for n in &s.nodes {
            for (o, v) in [("completed", n.completed), ("failed", n.failed)] {
                jobs.push((with(n, "outcome", o), self.floor(format!("node {} {o}", n.name), v)));
            }
            redelivered.push((node(n), self.floor(format!("node {} redelivered", n.name), n.redelivered)));
        }
        counters(e, "node_jobs", "A worker node's jobs by outcome over the run", &jobs)?;
        counters(e, "node_redelivered", "Jobs a worker node was delivered a second time or more", &redelivered)?;
        let workers: Vec<_> = s
            .nodes
            .iter()
            .flat_map(|n| [(with(n, "state", "set"), n.workers as f64), (with(n, "state", "busy"), n.busy as f64)])
            .collect();
        gauges(e, "node_workers", "A worker node's workers: set and busy", None, &workers)?;
        let per = |f: fn(&crate::metrics::NodeView) -> f64| s.nodes.iter().map(|n| (node(n), f(n))).collect::<Vec<_>>();
        let up = per(|n| f64::from(u8::from(!n.lost && !n.finished)));
        gauges(e, "node_up", "1 while a worker node reports; 0 once lost (3 ticks silent) or finished", None, &up)?;
        let age = per(|n| n.last_heard_ms / 1e3);
        gauges(e, "node_last_report_age", "Time since a worker node's last report", Some(&Unit::Seconds), &age)?;
        let offset = per(|n| n.clock_offset_ms / 1e3);
        gauges(e, "node_clock_offset", "A worker node's clock minus the controller's", Some(&Unit::Seconds), &offset)?;
        let resp: Vec<_> =
            s.nodes.iter().flat_map(|n| stats(&n.latency_ms).map(|(k, v)| (with(n, "stat", k), v))).collect();
        gauges(
            e,
            "node_response",
            "A worker node's response time over the run: mean, p50, p99",
            Some(&Unit::Seconds),
            &resp,
        )
    }

    /// The broker under a broker run, and its own counts.
    fn broker(&mut self, e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
        let Some(b) = &s.broker else { return Ok(()) };
        let info = vec![
            ("kind", b.kind.clone()),
            ("url", b.url.clone()),
            ("stream", b.stream.clone()),
            ("consumer", b.consumer.clone()),
        ];
        e.encode_descriptor("broker", "The run's broker (its password or token shown as ***)", None, MetricType::Info)?
            .encode_info(&info)?;
        for (name, help, v) in [
            ("broker_redelivered", "Deliveries after the first (a node lost, or ack_wait passed)", b.redelivered),
            ("broker_duplicates", "Jobs finished twice (counted once in jobs_total)", b.duplicates),
            ("broker_publish_retries", "Publishes refused by a full stream and tried again (block)", b.publish_retries),
            ("broker_publish_errors", "Publishes that failed for another reason than a full stream", b.publish_errors),
            ("broker_disconnects", "Times the connection to the broker was lost", b.link.disconnects),
            ("broker_streams_lost", "Times the run's stream was found gone and made again", b.link.streams_lost),
            ("broker_lost_jobs", "Jobs lost with the broker's stream, counted at the run's end", b.lost_in_broker),
        ] {
            let v = self.floor(name.to_string(), v);
            counters(e, name, help, &[(Vec::new(), v)])?;
        }
        gauge1(e, "broker_connected", "1 while connected to the broker", f64::from(u8::from(b.link.connected)))?;
        gauge1(e, "broker_ack_pending_cap", "The consumer's max_ack_pending", b.ack_pending_cap as f64)?;
        gauge1(e, "broker_ack_pending_max", "The most jobs held unacknowledged at a sample", b.ack_pending_max as f64)?;
        let delivery = stats(&b.time_in_broker_ms).map(|(k, v)| (vec![("stat", k.to_string())], v));
        gauges(
            e,
            "broker_delivery",
            "Publish → delivered to a worker process, over the run",
            Some(&Unit::Seconds),
            &delivery,
        )?;
        let extra: Vec<_> = b.extra.iter().map(|(k, v)| (vec![("name", k.clone())], *v as f64)).collect();
        gauges(e, "broker_stat", "The broker adapter's own counts, by name (see the README)", None, &extra)
    }
}

/// The model's predictions for the measured window's inputs, when it has an answer. A replayed
/// trace's model is its simulation, too slow to run at every scrape: none is exported for it.
fn model(e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
    if s.settings.arrival == crate::settings::ArrivalKind::Trace {
        return Ok(());
    }
    let report = crate::report::model_report(s, None);
    let Some(p) = report.predicted else { return Ok(()) };
    let pair = |mean: Option<f64>, p99: Option<f64>| -> Vec<(Labels, f64)> {
        [("mean", mean), ("p99", p99)]
            .into_iter()
            .filter_map(|(k, v)| v.filter(|v| v.is_finite()).map(|v| (vec![("stat", k.to_string())], v / 1e3)))
            .collect()
    };
    let (resp, wait) = (pair(p.latency_ms_mean, p.latency_ms_p99), pair(p.wait_ms_mean, p.wait_ms_p99));
    gauges(e, "model_response", "The model's response time for the measured inputs", Some(&Unit::Seconds), &resp)?;
    gauges(e, "model_wait", "The model's wait for the measured inputs", Some(&Unit::Seconds), &wait)?;
    if let Some(q) = p.queue_len_mean.filter(|q| q.is_finite()) {
        gauge1(e, "model_queue_length", "The model's mean number of jobs waiting for a worker", q)?;
    }
    Ok(())
}

/// A summary's mean, p50 and p99, in seconds.
fn stats(s: &Summary) -> [(&'static str, f64); 3] {
    [("mean", s.mean / 1e3), ("p50", s.p50 / 1e3), ("p99", s.p99 / 1e3)]
}

fn counters(e: &mut DescriptorEncoder, name: &str, help: &str, samples: &[(Labels, u64)]) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        if labels.is_empty() {
            m.encode_counter::<NoLabelSet, _, u64>(v, None)?;
        } else {
            m.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(v, None)?;
        }
    }
    Ok(())
}

fn gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: &[(Labels, f64)],
) -> std::fmt::Result {
    if samples.is_empty() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, v) in samples {
        if labels.is_empty() {
            m.encode_gauge(v)?;
        } else {
            m.encode_family(labels)?.encode_gauge(v)?;
        }
    }
    Ok(())
}

/// A gauge of one series, without labels or unit.
fn gauge1(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    gauges(e, name, help, None, &[(Vec::new(), v)])
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::metrics::sparse::TickDist;
    use crate::metrics::{BrokerView, NodeView};

    fn scrape(state: &Arc<Mutex<Exported>>) -> String {
        let mut registry = Registry::with_prefix("pooltune");
        registry.register_collector(Box::new(Families(Arc::clone(state))));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn a_counter_never_falls_and_histograms_wait_for_the_run_distributions() {
        let state = Arc::new(Mutex::new(Exported::new(true)));
        assert_eq!(scrape(&state), "# EOF\n", "nothing before the first snapshot");
        let mut s = Snapshot::initial(crate::settings::Settings::default());
        s.totals.completed = 10;
        state.lock().unwrap().update(s.clone());
        let text = scrape(&state);
        assert_eq!(sample(&text, r#"pooltune_jobs_total{outcome="completed"}"#), Some("10"));
        assert!(!text.contains("pooltune_response_seconds"), "no histogram without the run's distributions");
        // A later count lower than one already exported (a duplicate subtracted late).
        s.totals.completed = 8;
        s.run_dist = Some(Arc::new(TickDist::default()));
        state.lock().unwrap().update(s);
        let text = scrape(&state);
        assert_eq!(sample(&text, r#"pooltune_jobs_total{outcome="completed"}"#), Some("10"));
        assert_eq!(sample(&text, r#"pooltune_response_seconds_bucket{le="+Inf"}"#), Some("0"));
    }

    #[test]
    fn a_broker_run_adds_its_nodes_and_the_broker() {
        let state = Arc::new(Mutex::new(Exported::new(false)));
        let mut s = Snapshot::initial(crate::settings::Settings::default());
        let node =
            |name: &str| NodeView { name: name.into(), workers: 3, busy: 1, completed: 7, ..NodeView::default() };
        s.nodes = vec![node("a"), NodeView { lost: true, ..node("b\"quoted") }];
        let mut b = BrokerView { url: "nats://u:***@h:4222".into(), redelivered: 2, ..BrokerView::default() };
        b.extra.insert("acks".into(), 5);
        s.broker = Some(b);
        state.lock().unwrap().update(s);
        let text = scrape(&state);
        for (series, v) in [
            (r#"pooltune_node_jobs_total{node="a",outcome="completed"}"#, "7"),
            (r#"pooltune_node_workers{node="a",state="busy"}"#, "1.0"),
            (r#"pooltune_node_up{node="a"}"#, "1.0"),
            (r#"pooltune_node_up{node="b\"quoted"}"#, "0.0"),
            ("pooltune_broker_redelivered_total", "2"),
            (r#"pooltune_broker_stat{name="acks"}"#, "5.0"),
            ("pooltune_broker_connected", "1.0"),
        ] {
            assert_eq!(sample(&text, series), Some(v), "{series} in:\n{text}");
        }
        assert!(text.contains(r#"pooltune_broker_info{kind="nats",url="nats://u:***@h:4222""#), "{text}");
        assert!(!text.contains("pooltune_model_"), "a worker node exports no model");
    }
}
