//! Extreme knobs, at start and live: no panic, no hang, every job accounted for. The refusals
//! just past each limit are covered where each way in is tested (flags in `cli`, profiles in
//! `profiles`, the `:` line in `tui::cmdline`).

mod common;

use std::time::Duration;

use common::{assert_accounted, exclusive, settings};
use pooltune::engine::{Command, EngineHandle, RunOptions};
use pooltune::settings::{ArrivalKind, Knob, MAX_QUEUE, MAX_RATE, MAX_WORKERS, Rate, ServiceKind, Settings};

fn run(s: Settings, live: &[Knob]) -> pooltune::metrics::Snapshot {
    let opts = RunOptions {
        duration: Some(Duration::from_millis(1200)),
        interval: Duration::from_millis(50),
        ..RunOptions::default()
    };
    let e = EngineHandle::start(s, opts).unwrap();
    for k in live {
        std::thread::sleep(Duration::from_millis(100));
        e.try_send(Command::Set(*k)).unwrap();
    }
    let last = e.join();
    assert!(last.finished);
    assert_accounted(&last);
    last
}

#[test]
fn the_edges_of_every_range_run() {
    let _g = exclusive();
    let hour = Duration::from_secs(3600);
    for (name, s) in [
        ("no workers", Settings { workers: 0, ..settings() }),
        ("the most workers", Settings { workers: MAX_WORKERS, ..settings() }),
        ("a queue of one", Settings { queue: 1, policy: pooltune::settings::Policy::Reject, ..settings() }),
        ("the largest queue", Settings { queue: MAX_QUEUE, workers: 1, ..settings() }),
        ("no arrivals", Settings { rate: Rate::PerSec(0.0), ..settings() }),
        (
            "the highest rate",
            Settings { rate: Rate::PerSec(MAX_RATE), queue: 1000, service: Duration::ZERO, ..settings() },
        ),
        ("no service time", Settings { service: Duration::ZERO, ..settings() }),
        ("an hour of service", Settings { service: hour, ..settings() }),
        ("an hour of blocking", Settings { service: hour, service_kind: ServiceKind::Offload, ..settings() }),
    ] {
        let last = run(s, &[]);
        assert!(last.elapsed < Duration::from_secs(10), "{name} took {:?} to end", last.elapsed);
    }
}

#[test]
fn extremes_applied_live() {
    let _g = exclusive();
    let knobs = [
        Knob::Workers(MAX_WORKERS),
        Knob::Workers(0),
        Knob::Queue(1),
        Knob::Queue(MAX_QUEUE),
        Knob::Rate(Rate::PerSec(MAX_RATE)),
        Knob::Rate(Rate::PerSec(0.0)),
        Knob::Rate(Rate::Max),
        Knob::Service(Duration::from_secs(3600)),
        Knob::Service(Duration::ZERO),
        Knob::ServiceKind(ServiceKind::Spin),
        Knob::Arrival(ArrivalKind::Closed),
        Knob::Arrival(ArrivalKind::Bursty),
        Knob::Workers(4),
    ];
    // No run length: the run ends when the engine has taken every command, whatever the pace.
    let opts = RunOptions { interval: Duration::from_millis(50), ..RunOptions::default() };
    let e = EngineHandle::start(settings(), opts).unwrap();
    for k in knobs {
        std::thread::sleep(Duration::from_millis(50));
        e.try_send(Command::Set(k)).unwrap();
    }
    common::wait_for(&e, Duration::from_secs(60), "every command taken", |s| s.commands >= knobs.len() as u64);
    let last = e.shutdown();
    assert!(last.finished);
    assert_accounted(&last);
    assert_eq!(last.settings.workers, 4);
}
