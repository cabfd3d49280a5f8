//! The dashboard: rendering snapshots (fed fixed snapshots, no wall clock), every size down to
//! nothing, and the real run loop driven by scripted keys against a real engine.

mod common;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures_util::StreamExt;
use pooltune::engine::{EngineHandle, RunOptions};
use pooltune::metrics::account::{Part, Replay};
use pooltune::metrics::sparse::{Sparse, TickDist};
use pooltune::metrics::{Snapshot, Summary, hist};
use pooltune::report::EndedBy;
use pooltune::settings::{Policy, Rate, Settings};
use pooltune::tui::{State, UiEvent, run_loop};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn settings() -> Settings {
    Settings { threads: 2, ..Settings::default() }
}

fn summary(mean: f64, p50: f64, p99: f64, max: f64) -> Summary {
    Summary { count: 1000, mean, p50, p90: f64::midpoint(p50, p99), p99, p999: max * 0.95, max }
}

/// A tick's distributions: 125 jobs whose service runs 0.5–10.5 ms and whose wait, in the
/// second minute, shrinks tenfold (more workers), both spread deterministically.
fn tick_dist(i: u32) -> Arc<TickDist> {
    let (mut resp, mut wait, mut svc) = (hist::new(), hist::new(), hist::new());
    let (mut rs, mut ws, mut ss) = (0u128, 0u128, 0u128);
    for k in 0..125u64 {
        let spread = (k * 7919 + u64::from(i) * 104_729) % 10_000;
        let s = Duration::from_micros(500 + spread);
        let w = Duration::from_micros(if i >= 240 { spread / 10 } else { spread });
        for (h, sum, d) in [(&mut resp, &mut rs, s + w), (&mut wait, &mut ws, w), (&mut svc, &mut ss, s)] {
            hist::record(h, d);
            *sum += d.as_nanos();
        }
    }
    Arc::new(TickDist { response: Sparse::of(&resp, rs), wait: Sparse::of(&wait, ws), service: Sparse::of(&svc, ss) })
}

/// Two minutes of made-up but plausible ticks, with a worker change half-way.
fn scripted_state(overloaded: bool) -> State {
    let first = Snapshot::initial(settings());
    let mut state = State::new(first.clone(), Duration::from_millis(250));
    for i in 1..=480u32 {
        let mut s = first.clone();
        let f = f64::from(i);
        s.tick = u64::from(i);
        s.elapsed = Duration::from_millis(u64::from(i) * 250);
        s.tick_len = Duration::from_millis(250);
        if i >= 240 {
            s.settings.workers = 6;
        }
        s.rates.offered = 500.0 + 40.0 * (f / 7.0).sin();
        s.rates.completed = s.rates.offered - 5.0 * (f / 3.0).cos();
        s.queue.depth = (i % 9) as usize;
        s.queue.bound = 100;
        s.queue.mean = f64::from(i % 9) / 2.0;
        s.busy_workers = 3;
        s.live_workers = s.settings.workers;
        s.utilisation = 0.62;
        s.in_flight = 4;
        s.latency.response = summary(6.0, 4.5, 20.0 + f64::from(i % 7), 30.0 + f64::from(i % 11));
        s.latency.wait = summary(0.9, 0.01, 10.0, 15.0);
        s.latency.service = summary(5.0, 3.5, 22.0, 34.0);
        s.totals.offered = u64::from(i) * 125;
        s.totals.completed = u64::from(i) * 125 - 4;
        s.measuring = true;
        s.measured.duration_s = f64::from(i % 240) / 4.0;
        s.measured.offered_per_s = 500.0;
        s.measured.throughput_per_s = 499.0;
        s.measured.utilisation = 0.62;
        s.measured.latency = s.latency;
        s.measured.queue_depth_mean = 0.45;
        s.measured.queue_waiting_mean = 0.45;
        s.measured.queued_ms_mean = 0.9;
        s.measured.service_cv = 1.0;
        s.measured.arrival_cv = 1.0;
        s.measured.jobs.offered = 3000;
        s.measured.jobs.completed = 2996;
        // The window's replays: its mean response as the ideal pool's, the producer's lateness,
        // the services' inflation and the pool's overhead (the model panel's account line).
        let part = |mean: f64, p99: f64| Part { mean, p99 };
        s.account = Some(Replay {
            jobs: 2996,
            complete: true,
            measured: part(6.0, 30.0),
            ideal: part(5.8, 28.0),
            lateness: part(0.02, 0.4),
            inflation: part(0.15, 0.9),
            overhead: part(0.03, 0.2),
            overhead_min_us: 0.0,
            sum_ms: 6.0,
        });
        if overloaded && i > 400 {
            s.settings.policy = Policy::Reject;
            s.rates.rejected = 120.0;
            s.queue.depth = 100;
        }
        s.dist = Some(tick_dist(i));
        s.commands = state.sent;
        state.on_snapshot(s);
    }
    state
}

/// The `knee` profile's workload (4 workers, 5 ms service, queue 500, reject) mid-ramp: 30 s at
/// 400/s, then the timeline raising the rate 5/s every 250 ms tick, 20 s in (800/s).
fn knee_state() -> State {
    let knee = Settings { workers: 4, queue: 500, policy: Policy::Reject, rate: Rate::PerSec(400.0), ..settings() };
    let first = Snapshot::initial(knee);
    let mut state = State::new(first.clone(), Duration::from_millis(250));
    for i in 1..=200u32 {
        let mut s = first.clone();
        s.tick = u64::from(i);
        s.elapsed = Duration::from_millis(u64::from(i) * 250);
        s.tick_len = Duration::from_millis(250);
        let rate = if i > 120 { 400.0 + 5.0 * f64::from(i - 120) } else { 400.0 };
        s.settings.rate = Rate::PerSec(rate);
        let rho = rate * 0.005 / 4.0;
        s.rates.offered = rate;
        s.rates.completed = rate;
        s.queue.depth = (rho * rho * 8.0) as usize;
        s.queue.bound = 500;
        s.busy_workers = (rho * 4.0).round() as u64;
        s.live_workers = 4;
        s.utilisation = rho;
        let wait = rho.powi(4) * 10.0;
        s.latency.response = summary(5.0 + wait, 3.6 + wait / 2.0, 23.0 + 4.0 * wait, 40.0 + 5.0 * wait);
        s.latency.wait = summary(wait, wait / 3.0, 4.0 * wait, 5.0 * wait);
        s.latency.service = summary(5.0, 3.5, 23.0, 34.0);
        s.totals.offered = u64::from(i) * 125;
        s.totals.completed = u64::from(i) * 125 - 2;
        s.measuring = true;
        // The dashboard's window restarts at every change: during the ramp it is one tick.
        let window_ticks = if i > 120 { 1.0 } else { f64::from(i) };
        s.measured.duration_s = window_ticks / 4.0;
        s.measured.offered_per_s = rate;
        s.measured.throughput_per_s = rate;
        s.measured.utilisation = rho;
        s.measured.latency = s.latency;
        s.measured.service_cv = 1.0;
        s.measured.arrival_cv = 1.0;
        s.measured.jobs.offered = (rate * window_ticks / 4.0) as u64;
        s.measured.jobs.completed = s.measured.jobs.offered;
        s.dist = Some(tick_dist(i));
        state.on_snapshot(s);
    }
    state
}

/// Vegas on the `contention` downstream: started at 2 workers, it grows by 6, then by 1 a
/// second to 9 (one burst of decisions), holds for 20 s, then moves once more 25 s in.
fn adaptive_state() -> State {
    use pooltune::adapt::{AdaptView, State as Algo};
    use pooltune::settings::Adapt;
    let base = Settings {
        workers: 2,
        adapt: Adapt::Vegas,
        contention: 0.1,
        coherency: 0.01,
        queue: 200,
        policy: Policy::Reject,
        rate: Rate::PerSec(1200.0),
        ..settings()
    };
    let first = Snapshot::initial(base);
    let mut state = State::new(first.clone(), Duration::from_millis(250));
    for i in 1..=160u32 {
        let mut s = first.clone();
        s.tick = u64::from(i);
        s.elapsed = Duration::from_millis(u64::from(i) * 250);
        s.tick_len = Duration::from_millis(250);
        let secs = i / 4;
        let n = match secs {
            0..2 => 2,
            2 => 8,
            _ if secs < 25 => 9,
            _ => 8,
        };
        s.settings.workers = n;
        let law = 1.0 + 0.1 * (n as f64 - 1.0) + 0.01 * (n * (n - 1)) as f64;
        let x = n as f64 / (0.005 * law);
        s.rates.offered = 1200.0;
        s.rates.completed = x;
        s.rates.rejected = 1200.0 - x;
        (s.queue.depth, s.queue.bound) = (200, 200);
        (s.busy_workers, s.live_workers, s.utilisation) = (n as u64, n, 1.0);
        s.latency.response = summary(280.0, 275.0, 350.0, 380.0);
        s.latency.wait = summary(270.0, 265.0, 340.0, 360.0);
        // As many services as the tick completed (x a second), so the run's USL fit is the law's.
        let done = (x * 0.25).round() as u64;
        s.latency.service = Summary { count: done, ..summary(5.0 * law, 3.5 * law, 23.0 * law, 30.0 * law) };
        s.totals.offered = u64::from(i) * 300;
        s.totals.completed = u64::from(i) * 180;
        s.totals.rejected = u64::from(i) * 120;
        s.measuring = true;
        s.measured.duration_s = f64::from(i) / 4.0;
        s.measured.workers.min = 2;
        s.measured.workers.max = 9;
        s.measured.workers.mean = 8.4;
        s.adapt = Some(AdaptView {
            algorithm: Adapt::Vegas,
            limit: n as f64,
            windows: u64::from(secs),
            state: Algo::Vegas { queue: 4.0, rtt_ms: 5.0 * law, rtt_noload_ms: 5.6 },
        });
        s.dist = Some(tick_dist(i));
        state.on_snapshot(s);
    }
    state
}

/// A controller's decisions are marked once a burst, labelled with the algorithm; the panel
/// shows its state and the static answer, and a workers chart joins the others.
#[test]
fn adaptive_decisions_are_one_marker_a_burst() {
    let s = adaptive_state();
    let labels: Vec<&str> = s.markers.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(labels, ["workers 2→9 (vegas)", "workers 8 (vegas)"], "{:?}", s.markers);
    let text = format!("{}", render(&s, 120, 40).backend());
    // The fit of the counts the controller visited (2, 8, 9: three counts, no interval yet).
    let fit = s.usl_fit.as_ref().expect("a fit").as_ref().expect("three counts fit");
    assert!((fit.usl.contention - 0.1).abs() < 0.01 && (fit.usl.coherency - 0.01).abs() < 0.001, "{:?}", fit.usl);
    for want in
        ["adapt", "vegas", "limit 8.0", "queue 4 (3..6)", "N* 9.5", "2–9 mean 8.4", "workers, vegas", "USL fit: σ"]
    {
        assert!(text.contains(want), "'{want}' missing:\n{text}");
    }
    insta::assert_snapshot!(render(&s, 120, 40).backend());
}

fn render(state: &State, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| f.render_widget(state, f.area())).unwrap();
    t
}

#[test]
fn renders_at_80x24() {
    insta::assert_snapshot!(render(&scripted_state(false), 80, 24).backend());
}

/// A broker run with two worker nodes, one of them lost: the broker panel under the runtime's.
#[test]
fn renders_a_broker_run_with_its_nodes_at_120x40() {
    use pooltune::metrics::{BrokerView, NodeView};
    let mut state = scripted_state(false);
    let mut s = state.snap.clone();
    s.broker = Some(BrokerView {
        url: "nats://127.0.0.1:4222".into(),
        stream: "POOLTUNE_demo".into(),
        consumer: "workers".into(),
        redelivered: 66,
        duplicates: 1,
        publish_retries: 12,
        ack_pending_cap: 100,
        ack_pending_max: 87,
        time_in_broker_ms: summary(0.3, 0.25, 0.9, 1.2),
        ..BrokerView::default()
    });
    let node = |name: &str, lost: bool| NodeView {
        name: name.into(),
        workers: 4,
        busy: if lost { 0 } else { 3 },
        completed: 12_345,
        redelivered: if lost { 0 } else { 66 },
        lost,
        clock_offset_ms: 0.012,
        clock_uncertainty_ms: 0.08,
        last_heard_ms: if lost { 1500.0 } else { 20.0 },
        latency_ms: summary(6.0, 4.5, 21.0, 30.0),
        ..NodeView::default()
    };
    s.nodes = vec![node("a", false), node("b", true)];
    s.queue.parts = Some(pooltune::metrics::QueueParts { outbox: 3.0, stream: 5.0, held: 7.0 });
    s.tick += 1;
    state.on_snapshot(s);
    insta::assert_snapshot!(render(&state, 120, 40).backend());
}

/// A RabbitMQ run: the panel says what RabbitMQ counts (a bound on ready jobs, the jobs
/// unacknowledged, the publishes nacked at the bound) where a NATS run's says the stream's.
#[test]
fn renders_a_rabbitmq_run_at_120x40() {
    use pooltune::metrics::{BrokerView, NodeView};
    let mut state = scripted_state(false);
    let mut s = state.snap.clone();
    s.broker = Some(BrokerView {
        url: "amqp://demo:***@127.0.0.1:5672".into(),
        stream: "pooltune.demo.jobs".into(),
        consumer: "pooltune-workers".into(),
        redelivered: 40,
        publish_retries: 47,
        ack_pending_cap: 100,
        ack_pending_max: 128,
        kind: "rabbitmq".into(),
        holder: "queue".into(),
        bound_label: "ready bound".into(),
        extra: [("confirms_nacked".to_string(), 47), ("unacked_max".to_string(), 128)].into(),
        time_in_broker_ms: summary(0.7, 0.6, 1.9, 2.4),
        ..BrokerView::default()
    });
    let node = |name: &str, lost: bool| NodeView {
        name: name.into(),
        workers: 2,
        busy: if lost { 0 } else { 2 },
        completed: 1_134,
        redelivered: if lost { 0 } else { 40 },
        lost,
        clock_offset_ms: 0.130,
        clock_uncertainty_ms: 0.287,
        last_heard_ms: if lost { 1500.0 } else { 20.0 },
        latency_ms: summary(12.7, 11.8, 22.9, 26.6),
        ..NodeView::default()
    };
    s.nodes = vec![node("a", true), node("b", false)];
    s.queue.parts = Some(pooltune::metrics::QueueParts { outbox: 0.0, stream: 12.0, held: 30.0 });
    s.tick += 1;
    state.on_snapshot(s);
    let text = format!("{}", render(&state, 120, 40).backend());
    for want in
        ["pooltune.demo.jobs on amqp://demo:***@", "in queue 3 / ready bound 100", "unacked max 128", "nacked 47"]
    {
        assert!(text.contains(want), "'{want}' missing:\n{text}");
    }
    insta::assert_snapshot!(render(&state, 120, 40).backend());
}

/// The broker away: the status line says so, with how long, ahead of the counts (at 80 columns
/// too); back, with its stream lost, it says that and where the lost jobs are counted.
#[test]
fn a_broker_outage_and_a_lost_stream_are_on_the_status_line() {
    use pooltune::metrics::{BrokerView, LinkView};
    let mut state = scripted_state(false);
    let line = |state: &State, w: u16| {
        let text = format!("{}", render(state, w, 24).backend());
        text.lines().find(|l| l.contains(" running ")).unwrap_or_else(|| panic!("no status line: {text}")).to_string()
    };
    assert!(!line(&state, 80).contains("broker"), "no broker, no word of it");
    for (link, want) in [
        (
            LinkView { connected: false, disconnects: 1, outage_ms: 1400.0, streams_lost: 0 },
            "broker down 1.4 s, reconnecting",
        ),
        (LinkView { connected: true, disconnects: 1, outage_ms: 2100.0, streams_lost: 1 }, "stream lost ×1"),
    ] {
        let mut s = state.snap.clone();
        s.broker = Some(BrokerView { url: "nats://127.0.0.1:4222".into(), link, ..BrokerView::default() });
        s.tick += 1;
        state.on_snapshot(s);
        for w in [80, 200] {
            let got = line(&state, w);
            assert!(got.contains(want), "{w} columns: {got:?}");
        }
    }
}

/// A live sweep and a profile's timeline would both move knobs: `:sweep` is refused, naming the
/// timeline's progress, while the timeline has changes to make, and starts once it is done.
#[test]
fn a_sweep_waits_for_a_running_timeline() {
    use pooltune::tui::action::submit;
    let mut state = scripted_state(false);
    state.timeline_running = Some("timeline 1/3, next at 30s".into());
    let _ = submit(&mut state, "sweep rate 200..400 3 1s");
    let m = state.message.as_ref().expect("a message");
    assert!(
        m.error && m.text.contains("timeline 1/3, next at 30s") && m.text.contains("once the timeline is done"),
        "{m:?}"
    );
    assert!(state.sweep.is_none());
    state.timeline_running = None;
    let _ = submit(&mut state, "sweep rate 200..400 3 1s");
    assert!(state.sweep.is_some(), "{:?}", state.message);
}

#[test]
fn renders_at_200x60() {
    insta::assert_snapshot!(render(&scripted_state(false), 200, 60).backend());
}

/// A ramp is one change: one marker spanning it (two lines on the charts), and the model panel
/// says it waits for the settings to hold rather than comparing one-tick windows.
#[test]
fn a_ramp_is_one_marker_and_the_model_waits_for_it() {
    let s = knee_state();
    assert_eq!(s.markers.len(), 1, "{:?}", s.markers);
    let m = &s.markers[0];
    assert_eq!((m.t, m.until), (30.25, 50.0), "{m:?}");
    assert_eq!(m.label, "rate 400→800 (ramp)");
    assert_eq!(s.ramping(), Some("rate"));
    let text = format!("{}", render(&s, 200, 60).backend());
    // The panel wraps the reason: "ramping rate: comparing when settings" / "hold".
    assert!(text.contains("ramping rate: comparing when settings"), "{text}");
    assert!(s.model.as_ref().and_then(|m| m.reason.as_deref()) == Some("ramping rate: comparing when settings hold"));
    assert!(!text.contains("longer than configured") && !text.contains("below the set rate"), "{text}");
}

#[test]
fn renders_knee_mid_ramp_at_80x24() {
    insta::assert_snapshot!(render(&knee_state(), 80, 24).backend());
}

#[test]
fn renders_knee_mid_ramp_at_200x60() {
    insta::assert_snapshot!(render(&knee_state(), 200, 60).backend());
}

/// At 80×24 every panel's text is whole: fields the width cannot hold are dropped, not cut.
#[test]
fn at_80x24_no_field_is_cut() {
    // One state at a time: three on the stack at once pass clippy's 16 KB array limit.
    let states: [fn() -> State; 3] = [|| scripted_state(false), knee_state, adaptive_state];
    for make in states {
        let s = make();
        let text = format!("{}", render(&s, 80, 24).backend());
        for whole in ["kind sleep", "abandoned 0", "resp ms", "ramping rate", "p policy", "no-load 5.60", "mean 8.4"] {
            let part = &whole[..whole.len() - 2];
            assert!(!text.contains(part) || text.contains(whole), "'{part}' is cut from '{whole}':\n{text}");
        }
    }
}

#[test]
fn renders_at_120x40_with_overload_said_in_words() {
    insta::assert_snapshot!(render(&scripted_state(true), 120, 40).backend());
}

/// The shipped bursty trace replayed at ×1.25 on 10 workers: the arrival line names the speed,
/// the model is the trace's simulation, and the Poisson model of the same mean rate is beside it.
#[test]
fn renders_a_trace_replay_at_120x40() {
    use pooltune::engine::replay::Arrivals;
    use pooltune::settings::ArrivalKind;
    use pooltune::trace::{ServiceSpec, TraceSpec, load};
    let spec = TraceSpec {
        service_column: Some("tokens".into()),
        service: ServiceSpec::Size { base: Duration::from_millis(5), per_unit: Duration::from_micros(100) },
        ..TraceSpec::new("profiles/bursty-trace.csv")
    };
    let a = Arrivals::new(Arc::new(load(&spec).unwrap()), false).unwrap();
    let mut state = scripted_state(false);
    state.arrivals = Some(a.clone());
    let mut s = state.snap.clone();
    s.settings.arrival = ArrivalKind::Trace;
    s.settings.workers = 10;
    s.settings.rate = Rate::PerSec((a.mean_rate() * 1.25 * 1000.0).round() / 1000.0);
    s.settings.service = Duration::from_micros(20_017);
    s.measured.setting_changes = 0;
    s.measured.jobs.offered = 3000;
    s.trace_offered = 3000;
    s.tick += 1;
    s.commands = state.sent;
    state.on_snapshot(s);
    let t = render(&state, 120, 40);
    let text: String = t.backend().buffer().content().iter().map(ratatui::buffer::Cell::symbol).collect();
    assert!(text.contains("trace 125/s ×1.25"), "the arrival line says the speed: {:?}", t.backend());
    assert!(text.contains("trace simulation") && text.contains("Poisson fit: p99"), "the model is the trace's");
    insta::assert_snapshot!(t.backend());
}

/// Drawing from a sample: the knobs panel says `empirical` and the sample's p99 at the knob's
/// mean, and the cv line the sample's CV, not the `service_cv` knob's; `d` cycles through
/// `empirical` only when a sample was given.
#[test]
fn an_empirical_service_shows_its_samples_cv_and_p99() {
    use pooltune::engine::Command;
    use pooltune::model::sample::ServiceSample;
    use pooltune::settings::Knob;
    use pooltune::settings::ServiceDist;
    use pooltune::tui::action::{Action, Effect, update};
    // 2 ms × 98 and 20 ms × 2: mean 2.36 ms, cv √(11.92 − 2.36²) / 2.36 = 1.07; scaled to
    // 4.72 ms, the p99 (the 99th of 100, 20 ms) is 40 ms.
    let values = (0..100).map(|k| if k < 98 { 2_000_000 } else { 20_000_000 }).collect();
    let sample = Arc::new(ServiceSample::from_values("data/service-times.txt", values).unwrap());
    let mut state = scripted_state(false);
    let mut s = state.snap.clone();
    s.settings.service_dist = ServiceDist::Empirical;
    s.settings.service = Duration::from_micros(4720);
    s.service_sample = Some(sample.clone());
    s.tick += 1;
    s.commands = state.sent;
    state.on_snapshot(s);
    let t = render(&state, 200, 60);
    let text: String = t.backend().buffer().content().iter().map(ratatui::buffer::Cell::symbol).collect();
    assert!(text.contains("4.72ms empirical  p99 40.0 ms"), "{:?}", t.backend());
    assert!(text.contains(&format!("cv {:.2}", sample.cv())), "the sample's cv: {:?}", t.backend());
    // `d` from lognormal: empirical with a sample, past it (to constant) without one.
    let next = |state: &mut State| {
        state.desired.service_dist = ServiceDist::Lognormal;
        update(state, Action::CycleDist)
    };
    let set = |d| Effect::Send(Command::Set(Knob::ServiceDist(d)));
    assert_eq!(next(&mut state), set(ServiceDist::Empirical));
    state.snap.service_sample = None;
    assert_eq!(next(&mut state), set(ServiceDist::Constant));
}

#[test]
fn the_distribution_follows_the_chart_window() {
    let mut s = scripted_state(false);
    // The last 30 s are all after the change: waits of at most 1 ms.
    let short = s.recent.unwrap();
    assert!(short.latency.wait.max <= 1.0 + 1e-3, "{:?}", short.latency.wait);
    // The window moves a slot (a thirtieth) at a time: it holds 29/30 to all of its 120 ticks.
    assert!((116..=120).contains(&(short.latency.wait.count / 125)), "{:?}", short.latency.wait);
    assert!((29.0..=30.0).contains(&short.span_s), "{}", short.span_s);
    // The 2-minute window reaches back before it, to waits of up to 10 ms.
    pooltune::tui::action::update(&mut s, pooltune::tui::action::Action::ZoomOut);
    let long = s.recent.unwrap();
    assert!(long.latency.wait.max > 9.0, "{:?}", long.latency.wait);
    assert!((464..=480).contains(&(long.latency.wait.count / 125)), "{:?}", long.latency.wait);
    assert!(format!("{}", render(&s, 80, 24).backend()).contains("ms, last 2m"));
    // The same tick seen twice counts once.
    s.on_snapshot(s.snap.clone());
    assert_eq!(s.recent.unwrap().latency.wait.count, long.latency.wait.count);
    s.reset_distribution();
    assert!(s.recent.is_none());
}

#[test]
fn help_overlay_lists_every_key() {
    let mut s = scripted_state(false);
    s.help = true;
    let t = render(&s, 120, 40);
    let text = format!("{}", t.backend());
    for b in pooltune::tui::keys::KEYS {
        assert!(text.contains(b.label), "help lacks {}", b.label);
    }
    insta::assert_snapshot!(t.backend());
}

#[test]
fn too_small_says_so_and_no_size_panics() {
    let s = scripted_state(true);
    let text = format!("{}", render(&s, 40, 12).backend());
    assert!(text.contains("terminal too small"), "{text}");
    for w in 0..=130 {
        for h in [0, 1, 2, 5, 17, 18, 24, 60] {
            render(&s, w, h);
        }
    }
}

fn key(c: char) -> UiEvent {
    UiEvent::Term(Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)))
}

fn enter() -> UiEvent {
    UiEvent::Term(Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)))
}

/// Waits (a liveness bound, not a timing assertion) until the engine shows what was asked.
async fn until(engine: &EngineHandle, what: &str, pred: impl Fn(&Snapshot) -> bool) {
    for _ in 0..400 {
        if pred(&engine.latest()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the engine never showed {what}");
}

#[tokio::test]
async fn scripted_keys_drive_the_engine() {
    let opts = RunOptions { interval: Duration::from_millis(50), ..RunOptions::default() };
    let engine = EngineHandle::start(settings(), opts).unwrap();
    let mut state = State::new(engine.latest(), opts.interval);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<UiEvent>();
    let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) }).boxed();
    let mut seen = 0u64;
    let mut sink = |_: &Snapshot, _: &EngineHandle, _: &mut State| {
        seen += 1;
        Ok(())
    };
    let driver = async {
        tx.send(key('w')).unwrap();
        until(&engine, "5 workers", |s| s.settings.workers == 5).await;
        for c in ":rate 700".chars() {
            tx.send(key(c)).unwrap();
        }
        tx.send(enter()).unwrap();
        until(&engine, "rate 700", |s| s.settings.rate == Rate::PerSec(700.0)).await;
        tx.send(key('p')).unwrap();
        until(&engine, "policy reject", |s| s.settings.policy == Policy::Reject).await;
        // A refused value is reported, not sent.
        for c in ":queue 0".chars() {
            tx.send(key(c)).unwrap();
        }
        tx.send(enter()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        tx.send(key('q')).unwrap();
    };
    let (ended, ()) = tokio::join!(run_loop(&mut terminal, &engine, events, &mut state, &mut sink), driver);
    assert_eq!(ended.unwrap(), EndedBy::Quit);
    assert!(seen > 0, "the sink saw snapshots");
    let msg = state.message.clone().unwrap();
    assert!(msg.error && msg.text.contains("queue bound 0"), "{msg:?}");
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("queue bound 0 is not accepted"), "{screen}");
    let last = engine.shutdown();
    assert_eq!(last.settings.workers, 5);
    common::assert_accounted(&last);
}

/// Types a `:` command and Enter.
fn command(tx: &tokio::sync::mpsc::UnboundedSender<UiEvent>, text: &str) {
    for c in text.chars() {
        tx.send(key(c)).unwrap();
    }
    tx.send(enter()).unwrap();
}

/// `:sweep` runs its steps live through the same stepper as `pooltune sweep`, draws the curve,
/// and says what it found; a knob key during a sweep stops it and says so.
#[tokio::test]
async fn a_live_sweep_runs_its_steps_and_a_knob_key_stops_it() {
    let opts = RunOptions { interval: Duration::from_millis(50), ..RunOptions::default() };
    let base = Settings { workers: 4, service: Duration::from_millis(2), rate: Rate::PerSec(200.0), ..settings() };
    let engine = EngineHandle::start(base, opts).unwrap();
    let mut state = State::new(engine.latest(), opts.interval);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<UiEvent>();
    let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) }).boxed();
    let (done_tx, done_rx) = tokio::sync::watch::channel((0usize, false));
    let mut sink = |_: &Snapshot, _: &EngineHandle, s: &mut State| {
        let _ = done_tx.send(s.sweep.as_ref().map_or((0, false), |w| (w.steps().len(), w.done())));
        Ok(())
    };
    let driver = async {
        command(&tx, ":slo 50ms");
        command(&tx, ":sweep rate 100..300 3 300ms");
        let mut rx = done_rx.clone();
        // A liveness bound, not a timing assertion: three steps of 0.6 s each.
        tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|(_, done)| *done)).await.unwrap().unwrap();
        // Frames are drawn at most 30 times a second: let the last one come.
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(key('q')).unwrap();
    };
    let (ended, ()) = tokio::join!(run_loop(&mut terminal, &engine, events, &mut state, &mut sink), driver);
    assert_eq!(ended.unwrap(), EndedBy::Quit);
    let sweep = state.sweep.as_ref().expect("the sweep stays on screen");
    let report = sweep.report();
    assert_eq!(report.steps.iter().map(|s| s.value_text.as_str()).collect::<Vec<_>>(), ["100", "200", "300"]);
    assert!(report.stopped_early.is_none());
    assert_eq!(report.slo.as_ref().map(|s| s.p99_ms), Some(50.0), "the dashboard's target is the sweep's");
    let screen = format!("{}", terminal.backend());
    assert!(screen.contains("sweep rate · done"), "{screen}");
    assert!(screen.contains("holds over the whole range"), "the verdict is shown: {screen}");
    assert_eq!(engine.latest().settings.rate, Rate::PerSec(300.0), "the last step's value stays set");

    // A second sweep, stopped by a knob key in its first step.
    let mut state = State::new(engine.latest(), opts.interval);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<UiEvent>();
    let events = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) }).boxed();
    let mut sink = |_: &Snapshot, _: &EngineHandle, _: &mut State| Ok(());
    let driver = async {
        // Steps of 1 s settling and 1 s measuring: the key comes well inside the first.
        command(&tx, ":sweep rate 100..300 3 1s");
        until(&engine, "the first step's rate", |s| s.settings.rate == Rate::PerSec(100.0)).await;
        tx.send(key('w')).unwrap();
        until(&engine, "5 workers", |s| s.settings.workers == 5).await;
        // Past where the second step would have begun had the sweep gone on.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        tx.send(key('q')).unwrap();
    };
    let (ended, ()) = tokio::join!(run_loop(&mut terminal, &engine, events, &mut state, &mut sink), driver);
    assert_eq!(ended.unwrap(), EndedBy::Quit);
    let msg = state.message.clone().unwrap();
    assert!(msg.error && msg.text.contains("sweep stopped: you changed workers"), "{msg:?}");
    let report = state.sweep.as_ref().unwrap().report();
    assert_eq!(report.stopped_early.as_deref(), Some("you changed workers"));
    assert_eq!(engine.latest().settings.rate, Rate::PerSec(100.0), "no step after the stop");
    let last = engine.shutdown();
    common::assert_accounted(&last);
}

/// The cells of a screen that are not plain, as runs: `row col–col: fg/bg modifiers`, for
/// snapshots of what colour and attributes say (the backend's text shows neither).
fn style_runs(t: &Terminal<TestBackend>) -> String {
    use std::fmt::Write as _;
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut x = 0;
        while x < buf.area.width {
            let c = &buf[(x, y)];
            let key = (c.fg, c.bg, c.modifier);
            let start = x;
            while x < buf.area.width && (buf[(x, y)].fg, buf[(x, y)].bg, buf[(x, y)].modifier) == key {
                x += 1;
            }
            if key != (ratatui::style::Color::Reset, ratatui::style::Color::Reset, ratatui::style::Modifier::empty()) {
                let _ = writeln!(out, "{y:>2} {start:>3}–{:<3} {:?}/{:?} {:?}", x - 1, key.0, key.1, key.2);
            }
        }
    }
    out
}

/// The default run in colour and without (`NO_COLOR`, `--color never`): without, no cell has a
/// colour, the same cells still stand out (by attributes), and the charts' series differ by
/// marker.
#[test]
fn renders_without_colour_saying_the_same_by_attributes() {
    let mut s = scripted_state(true);
    let colour = render(&s, 120, 40);
    s.palette = pooltune::tui::Palette::Mono;
    let mono = render(&s, 120, 40);
    let runs = style_runs(&mono);
    assert!(!runs.lines().any(|l| !l.contains("Reset/Reset")), "a colour is left:\n{runs}");
    for want in ["REVERSED", "BOLD | UNDERLINED", "DIM"] {
        assert!(runs.contains(want), "no {want} cell:\n{runs}");
    }
    let (text_c, text_m) = (format!("{}", colour.backend()), format!("{}", mono.backend()));
    assert!(text_m.contains("█ done/s") && text_c.contains("━ done/s"), "the second series of a chart in blocks");
    insta::assert_snapshot!("colour_styles", style_runs(&colour));
    insta::assert_snapshot!("mono_styles", runs);
    insta::assert_snapshot!("mono_text", mono.backend());
}

/// No downstream configured, an operator trying 2, 5, 9, 20 and 30 workers in front of one that
/// pushes back (σ 0.1, κ 0.01), with a `:slo` target: the model panel fits the law from the run's
/// own windows and sizes the pool in front of the fitted curve, never past its peak.
#[test]
fn the_model_panel_fits_the_downstream_and_advises_in_front_of_it() {
    use pooltune::model::advisor::Target;
    let first = Snapshot::initial(Settings { workers: 2, rate: Rate::PerSec(1200.0), ..settings() });
    let mut state = State::new(first.clone(), Duration::from_millis(250));
    state.slo = Some(Target::P99(0.2));
    for i in 1..=100u32 {
        let mut s = first.clone();
        s.tick = u64::from(i);
        s.elapsed = Duration::from_millis(u64::from(i) * 250);
        s.tick_len = Duration::from_millis(250);
        let n = [2usize, 5, 9, 20, 30][((i - 1) / 20) as usize];
        s.settings.workers = n;
        let law = 1.0 + 0.1 * (n as f64 - 1.0) + 0.01 * (n * (n - 1)) as f64;
        let x = n as f64 / (0.005 * law);
        s.rates.completed = x;
        s.latency.service = Summary { count: (x * 0.25).round() as u64, ..summary(5.0 * law, 3.5 * law, 23.0, 30.0) };
        s.measuring = true;
        s.measured.offered_per_s = 400.0;
        state.on_snapshot(s);
    }
    let fit = state.usl_fit.as_ref().unwrap().as_ref().unwrap();
    assert!((fit.peak.unwrap().value - 90f64.sqrt()).abs() < 0.3, "{}", fit.line());
    let advice = state.usl_advice.as_deref().expect("advice in front of the fitted curve");
    assert!(advice.contains("needs ≥"), "{advice}");
    let text = format!("{}", render(&state, 200, 60).backend());
    assert!(text.contains("USL fit: σ 0.09") || text.contains("USL fit: σ 0.10"), "{text}");
}
