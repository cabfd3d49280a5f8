//! The `slo` controller's rules on scripted windows, and its steadiness on a simulated steady
//! load (M/M/c windows drawn from a seeded generator).

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, Poisson};

use super::*;
use crate::adapt::sizer::{Arrivals, Recent, Sizer};
use crate::model::erlang::erlang_c;
use crate::model::usl::Usl;
use crate::settings::ServiceDist;

const S: f64 = 0.005;
const T: f64 = 0.030;
const B: Bounds = Bounds { min: 1, max: 100, timeout: None };

fn sizer() -> Sizer {
    Sizer {
        arrivals: Arrivals::Open { cv: 1.0 },
        service_dist: ServiceDist::Exponential,
        service_cv: 1.0,
        downstream: Usl::default(),
    }
}

/// The controller's answer at a rate estimate of `rate`: the model's fewest at the rate plus the
/// headroom, for the target less the window's sampling margin.
fn answer(rate: f64) -> usize {
    let t = model_target(T, rate, S, 1.0, &sizer());
    sizer().fewest(rate * (1.0 + HEADROOM), S, 1.0, t).expect("a pool meets it") as usize
}

/// A one-second window: `rate` arrivals, each served in 5 ms, `waiting` queued at its end.
fn win(rate: u64, waiting: f64) -> Window {
    Window { secs: 1.0, completed: rate, service_s: S, arrived: rate, waiting, service_cv: 1.0, ..Window::default() }
}

#[test]
fn it_scales_up_at_once_and_down_after_the_cooldown_by_a_bounded_step() {
    let mut c = SloLimit::new(2, T, sizer());
    // 1,000 jobs/s: straight to the model's answer at 1,050/s (the headroom).
    let want = answer(1000.0);
    assert_eq!(c.update(&win(1000, 0.0), &B), want);
    assert!(matches!(c.state(), State::Slo { model, cooldown: 0, .. } if model == want));
    // The rate drops to 100/s: the estimate falls a tenth of the way a window, and the count
    // waits COOLDOWN windows below it before each step, to the most those windows asked for.
    let mut counts = Vec::new();
    for _ in 0..(3 * COOLDOWN) {
        counts.push(c.update(&win(100, 0.0), &B));
    }
    let downs: Vec<usize> = (1..counts.len()).filter(|&i| counts[i] < counts[i - 1]).collect();
    assert!(downs.len() >= 2, "it scaled down: {counts:?}");
    assert!(downs[0] >= COOLDOWN as usize - 1, "held through the first cool-down: {counts:?}");
    assert!(downs.windows(2).all(|d| d[1] - d[0] >= COOLDOWN as usize), "a cool-down between steps: {counts:?}");
    assert!(counts.windows(2).all(|p| p[0] >= p[1] && p[0] - p[1] <= down_step(p[0])), "{counts:?}");
    // Back up at once.
    assert_eq!(c.update(&win(1000, 0.0), &B), want);
}

#[test]
fn a_backlog_adds_what_drains_it_within_the_target() {
    let mut c = SloLimit::new(2, T, sizer());
    let model = answer(500.0);
    // 600 waiting at 5 ms each drain in 30 ms on 600 × 5 / 30 = 100 workers beyond 500 × 5 ms.
    let b = Bounds { max: 1000, ..B };
    let n = c.update(&win(500, 600.0), &b);
    let drain = (500.0f64 * S + 600.0 * S / T).ceil() as usize;
    assert_eq!(n, drain.max(model));
    assert!(n > model, "{n} vs the model's {model}");
    assert!(matches!(c.state(), State::Slo { backlog, .. } if backlog == drain - model));
}

/// A backlog that clears (a stall at a run's start) is given back after the cool-down, to the
/// most the cool-down's windows asked for, at most half the pool at once: within two
/// cool-downs here, not a worker per cool-down.
#[test]
fn a_cleared_backlog_is_given_back_within_two_cooldowns() {
    let mut c = SloLimit::new(2, T, sizer());
    let b = Bounds { max: 16, ..B };
    let model = answer(400.0);
    c.update(&win(400, 0.0), &b);
    assert_eq!(c.update(&win(400, 100.0), &b), 16, "a 100-job backlog: up at once, to the bound");
    let counts: Vec<usize> = (0..2 * COOLDOWN).map(|_| c.update(&win(400, 0.0), &b)).collect();
    let first = COOLDOWN as usize - 1;
    assert!(counts[..first].iter().all(|&n| n == 16), "held through the cool-down: {counts:?}");
    assert_eq!(counts[first], model.max(16 - down_step(16)), "half the pool at most: {counts:?}");
    assert_eq!(counts[counts.len() - 1], model, "the model's answer after the second: {counts:?}");
}

#[test]
fn the_model_is_asked_for_less_than_the_target_by_the_windows_sampling_error() {
    // 1,000 jobs a window of 5 ms exponential jobs: sd = 5 ms × √(0.99 / 10) = 1.57 ms.
    let t = model_target(T, 1000.0, S, 1.0, &sizer());
    assert!((t - (T - Z * S * (0.99f64 / 10.0).sqrt())).abs() < 1e-12, "{t}");
    // 50 jobs a window: the margin would ask for less than the service time's own p99 allows;
    // halfway from it (5 ms × ln 100) to the target instead.
    let floor = 0.5 * (T + S * 100f64.ln());
    assert!((model_target(T, 50.0, S, 1.0, &sizer()) - floor).abs() < 1e-12);
}

#[test]
fn it_holds_its_bounds_and_starts_from_an_operator_count() {
    let mut c = SloLimit::new(2, T, sizer());
    assert_eq!(c.update(&win(5000, 0.0), &Bounds { max: 10, ..B }), 10);
    let mut d = SloLimit::new(2, T, sizer());
    assert_eq!(d.update(&win(10, 0.0), &Bounds { min: 4, ..B }), 4);
    // An operator's count is where it goes on from: down only after a cool-down.
    d.reset_to(9);
    assert_eq!(d.limit() as usize, 9);
    assert_eq!(d.update(&win(10, 0.0), &Bounds { min: 4, ..B }), 9);
}

/// Runs `n` simulated windows of M/M/c at `rate` with the count the controller sets, returning
/// the counts. Each window: Poisson arrivals, their mean service time from as many exponential
/// draws, and the queue at its end drawn from the stationary M/M/c queue length for the count
/// then set (P(Q ≥ k) = C(c, a)·ρᵏ for k ≥ 1).
fn simulate(rate: f64, n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let arrivals = Poisson::new(rate).unwrap();
    let exp = Exp::new(1.0 / S).unwrap();
    let mut c = SloLimit::new(answer(rate), T, sizer());
    let mut count = answer(rate);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let k = arrivals.sample(&mut rng) as u64;
        let mean = (0..k).map(|_| exp.sample(&mut rng)).sum::<f64>() / k.max(1) as f64;
        let a = rate * S;
        let rho = a / count as f64;
        let pc = erlang_c(count as u32, a);
        let u: f64 = rng.random_range(0.0..1.0);
        let waiting = if rho < 1.0 && u < pc * rho { ((u / pc).ln() / rho.ln()).floor().max(1.0) } else { 0.0 };
        let w = Window { service_s: mean, ..win(k, waiting) };
        count = c.update(&w, &B);
        out.push(count);
    }
    out
}

/// How far (as a fraction of `rate`) the nearest rates are at which the model's count changes,
/// below and above.
fn gaps(rate: f64) -> (f64, f64) {
    let at = answer;
    let m = at(rate);
    let mut up = rate;
    while at(up) == m {
        up += 1.0;
    }
    let mut down = rate;
    while down > 1.0 && at(down) == m {
        down -= 1.0;
    }
    (1.0 - down / rate, up / rate - 1.0)
}

/// On a steady load the count does not move once set. Tolerance, derived: a window's arrival
/// count is Poisson, relative sd 1/√λ; the holding-time average (smoothing α = 0.3 over the
/// windows' means of λ draws) adds relative sd √(α/(2−α))/√λ; the load the model sees moves
/// with their sum, relative sd s = √((1 + α/(2−α))/λ). The rate is chosen where the model's
/// count is the same for 4.5 s either side. The fast-rising estimate follows each window up,
/// so it crosses the upper step if any of the N = 600 windows is 4.5 s high: under a normal
/// approximation N·P(Z > 4.5) = 600 × 3.4e-6 ≈ 0.002. The backlog rule adds a worker when the
/// queue at a window's end exceeds (m − λh)·T/h jobs, probability C(m, a)·ρ^that per window;
/// each such window may cost one move up and one back: the changes allowed are twice the
/// expected number of such windows plus four standard deviations of it (Poisson), rounded up.
#[test]
fn a_steady_load_does_not_make_it_oscillate() {
    let n = 600;
    let s_of = |rate: f64| ((1.0 + HOLD_SMOOTHING / (2.0 - HOLD_SMOOTHING)) / rate).sqrt();
    let (rate, margin) = (50..1500)
        .step_by(5)
        .map(|r| {
            let r = f64::from(r);
            let (down, up) = gaps(r);
            (r, down.min(up) / s_of(r))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(margin >= 4.5, "no rate 4.5 s from both steps (best {rate}/s at {margin:.1} s)");
    let m = answer(rate);
    let (a, h) = (rate * S, S);
    let q_star = ((m as f64 - a) * T / h).floor();
    let per_window = erlang_c(m as u32, a) * (a / m as f64).powf(q_star + 1.0);
    let expected = n as f64 * per_window;
    let allowed = (2.0 * (expected + 4.0 * expected.sqrt())).ceil() as usize;
    eprintln!(
        "{rate}/s: model {m}, {margin:.1} s from its steps, backlog windows expected {expected:.2}, {allowed} changes allowed"
    );
    for seed in 1..=3 {
        let counts = simulate(rate, n, seed);
        let changes = counts.windows(2).filter(|p| p[0] != p[1]).count();
        assert!(
            changes <= allowed,
            "seed {seed}, {rate}/s (model {m}): {changes} changes, {allowed} allowed; counts {:?}",
            &counts[..60]
        );
        assert!(counts.iter().all(|&c| c >= m), "never below the model's answer: {counts:?}");
    }
}

/// Right on one of the model's steps the noise crosses it every few windows; the count then
/// moves between the two sides at most once per cool-down down (and once up after each), not
/// every window.
#[test]
fn on_a_step_the_cooldown_bounds_the_changes() {
    let n = 600;
    // The lowest rate past 600/s at which the model asks one more worker.
    let m = answer(600.0);
    let step = (600..2000).map(f64::from).find(|&r| answer(r) > m).unwrap();
    let counts = simulate(step, n, 9);
    let downs = counts.windows(2).filter(|p| p[1] < p[0]).count();
    let ups = counts.windows(2).filter(|p| p[1] > p[0]).count();
    assert!(downs <= n / COOLDOWN as usize, "{downs} scale-downs in {n} windows");
    assert!(ups <= downs + 1, "{ups} up, {downs} down");
    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(hi - lo <= 2, "the count stays next to the step: {lo}..{hi}");
}

/// With no downstream configured, windows at counts on both sides of a downstream's peak give
/// the model the fitted curve; before the run has seen past the peak, the model stays plain.
#[test]
fn it_sizes_in_front_of_the_downstream_it_fitted() {
    let law = Usl { contention: 0.1, coherency: 0.01, capacity: None };
    let mut c = SloLimit::new(2, T, sizer());
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let at = |n: usize| {
        let hold = S * law.stretch(n as f64);
        let done = (n as f64 / hold).round() as u64;
        Window { secs: 1.0, completed: done, service_s: hold, arrived: 1200, workers: n, ..Window::default() }
    };
    for n in [2, 4, 6] {
        c.update(&at(n), &B);
        c.update(&at(n), &B);
    }
    // Three counts below N* ≈ 9.5: the peak is extrapolated, so no downstream yet.
    assert!(c.downstream().is_none(), "{:?}", c.downstream());
    for n in [20, 30] {
        c.update(&at(n), &B);
        c.update(&at(n), &B);
    }
    let d = c.downstream();
    assert!((d.contention - 0.1).abs() < 0.01 && (d.coherency - 0.01).abs() < 0.001, "{d:?}");
    assert!(d.peak().is_some_and(|n| (n - 90f64.sqrt()).abs() < 0.5), "{d:?}");
}

/// Exponential jobs measured at CV 1.05 are lognormal to the model, whose service p99 alone is
/// then 27.1 ms at 5.29 ms: the target's floor must be taken in that shape too, or the model is
/// asked to beat its own service tail by a hair (seen: 21 workers for 406 jobs/s).
#[test]
fn a_cv_just_off_one_does_not_send_the_count_to_the_bound() {
    let (rate, hold, cv) = (406.0, 0.00529, 1.05);
    let t = model_target(T, rate, hold, cv, &sizer());
    let n = sizer().fewest(rate * (1.0 + HEADROOM), hold, cv, t).expect("a pool meets it");
    assert!(n <= 8, "{n} workers for {rate}/s of {} ms jobs", hold * 1e3);
}

/// A saturated window in front of the `contention` law (σ 0.1, κ 0.01, N* ≈ 9.5) it was not
/// told of: `workers` busy, each job held 5 ms × the stretch, 1,200 arriving, 600 waiting.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
fn pushed_back(workers: usize) -> Window {
    let law = Usl { contention: 0.1, coherency: 0.01, capacity: None };
    let hold = S * law.stretch(workers as f64);
    let done = (workers as f64 / hold).round() as u64;
    Window { secs: 1.0, completed: done, service_s: hold, arrived: 1200, waiting: 600.0, workers, ..Window::default() }
}

#[test]
fn a_pool_sent_to_its_bound_past_an_unknown_peak_measures_a_count_between_and_comes_back() {
    // The backlog sends 4 workers straight to the bound (40), which completes fewer jobs a
    // second than 4 did; with two counts the fit has no peak, and only a third count places it.
    let bounds = Bounds { min: 1, max: 40, timeout: None };
    let mut c = SloLimit::new(4, 0.1, sizer());
    let mut counts = vec![4];
    for _ in 0..8 {
        let now = *counts.last().expect("a count");
        counts.push(c.update(&pushed_back(now), &bounds));
    }
    assert_eq!(counts[1], 40, "the backlog asks for the bound: {counts:?}");
    assert!(counts[2] > 4 && counts[2] < 40, "a count between measured next: {counts:?}");
    let last = *counts.last().expect("a count");
    assert!((9..=10).contains(&last), "back at the fitted peak, ⌊N*⌋ or ⌈N*⌉: {counts:?}");
    assert!(c.downstream().peak().is_some_and(|n| (n - 90f64.sqrt()).abs() < 0.1), "{:?}", c.downstream());
}

#[test]
fn a_replayed_trace_is_sized_by_simulating_its_latest_arrivals() {
    // 250 ms bursts at 800/s every second, silent between: the window reads 200 arrivals a
    // second, which the open model sizes as Poisson at 200/s.
    let arrivals: Vec<u64> =
        (0..10u64).flat_map(|s| (0..200u64).map(move |i| s * 1_000_000_000 + i * 1_250_000)).collect();
    let recent = Recent { arrivals, service: None, speed: 1.0, seed: 5, sample: None };
    let mut poisson = SloLimit::new(1, T, sizer());
    let mut traced = SloLimit::new(1, T, sizer());
    assert_eq!(traced.looks_back(), Some(LOOK_BACK_S));
    traced.recent(recent.clone());
    let (p, t) = (poisson.update(&win(200, 0.0), &B), traced.update(&win(200, 0.0), &B));
    let asked = model_target(T, 200.0, S, 1.0, &sizer());
    let want = sizer().fewest_on(&recent, S, 1.0, asked, HEADROOM).unwrap() as usize;
    assert_eq!(t, want, "the simulation's answer");
    assert_eq!(p, answer(200.0), "the open model's answer");
    assert!(t > p, "bursts need more than their mean rate: {t} vs {p}");
    // The arrivals are used once: the next window without them is sized by the open model.
    assert!(traced.recent.is_none());
}
