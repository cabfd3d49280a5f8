//! Hill climbing, as the .NET thread pool's `HillClimbing` does it: a square wave on the worker
//! count, the throughput's answer at the wave's frequency, and a move toward the gradient scaled
//! by how far that answer stands above the noise (see the module above for the defaults).

use super::{Bounds, Limiter, State, Window};

const WAVE_PERIOD: usize = 4;
const MAX_WAVE: f64 = 20.0;
const WAVE_MULTIPLIER: f64 = 1.0;
const HISTORY: usize = 8;
const SAMPLES: usize = WAVE_PERIOD * HISTORY;
const TARGET_SNR: f64 = 3.0;
const MAX_CHANGE_PER_S: f64 = 4.0;
const MAX_CHANGE_PER_SAMPLE: f64 = 20.0;
const NOISE_SMOOTHING: f64 = 0.01;
const GAIN_EXPONENT: f64 = 2.0;
/// A sample is long enough when (workers − 1)/completions is under this.
const MAX_SAMPLE_ERROR: f64 = 0.15;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Complex {
    re: f64,
    im: f64,
}

impl Complex {
    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    fn scale(self, k: f64) -> Complex {
        Complex { re: self.re * k, im: self.im * k }
    }
    fn sub(self, o: Complex) -> Complex {
        Complex { re: self.re - o.re, im: self.im - o.im }
    }
    fn div(self, o: Complex) -> Complex {
        let d = o.re * o.re + o.im * o.im;
        Complex { re: (self.re * o.re + self.im * o.im) / d, im: (self.im * o.re - self.re * o.im) / d }
    }
}

pub struct HillClimb {
    /// The worker count the wave rides on.
    control: f64,
    total: usize,
    last_count: usize,
    noise: f64,
    throughput: [f64; SAMPLES],
    counts: [f64; SAMPLES],
    /// At the fewest workers with throughput falling as they grow: sample longer.
    min_secs: f64,
    /// A worker must raise throughput by this share of its own to be worth adding (the
    /// `adapt_bias` knob; .NET's is 0.15).
    bias: f64,
    state: State,
}

impl HillClimb {
    #[must_use]
    pub fn new(start: usize, bias: f64) -> HillClimb {
        #[allow(clippy::cast_precision_loss)]
        let control = start as f64;
        HillClimb {
            control,
            total: 0,
            last_count: start,
            noise: 0.0,
            throughput: [0.0; SAMPLES],
            counts: [0.0; SAMPLES],
            min_secs: 0.0,
            bias,
            state: State::Starting,
        }
    }

    /// The last `n` values of `ring`, oldest first, at `period` (Goertzel), over `n`.
    #[allow(clippy::cast_precision_loss)]
    fn wave(&self, ring: &[f64; SAMPLES], n: usize, period: f64) -> Complex {
        let w = 2.0 * std::f64::consts::PI / period;
        let (cos, coeff) = (w.cos(), 2.0 * w.cos());
        let (mut q1, mut q2) = (0.0, 0.0);
        for i in 0..n {
            let q0 = coeff * q1 - q2 + ring[(self.total - n + i) % SAMPLES];
            q2 = q1;
            q1 = q0;
        }
        Complex { re: q1 - q2 * cos, im: q2 * w.sin() }.scale(1.0 / n as f64)
    }
}

impl Limiter for HillClimb {
    #[allow(clippy::cast_precision_loss)]
    fn ready(&self, w: &Window) -> bool {
        w.completed > 0
            && w.secs >= self.min_secs
            && (self.total == 0 || (w.workers.max(1) - 1) as f64 / (w.completed as f64) < MAX_SAMPLE_ERROR)
    }

    #[allow(clippy::cast_precision_loss)]
    fn update(&mut self, w: &Window, b: &Bounds) -> usize {
        let current = w.workers;
        if current != self.last_count {
            self.reset_to(current);
        }
        let throughput = w.completed as f64 / w.secs.max(1e-9);
        if w.waiting < 1.0 {
            // Nobody waits for a worker: the pool is not what limits throughput, so the wave
            // would measure nothing and the bias would lean the count down unseen. Hold.
            self.state = State::HillClimb { throughput_per_s: throughput, step: 0.0, wave: 0, confidence: 0.0 };
            self.min_secs = 0.0;
            self.last_count = super::workers_of(self.control, b);
            return self.last_count;
        }
        let i = self.total % SAMPLES;
        self.throughput[i] = throughput;
        self.counts[i] = current as f64;
        self.total += 1;

        let (mut ratio, mut confidence) = (Complex::default(), 0.0);
        let n = (self.total - 1).min(SAMPLES) / WAVE_PERIOD * WAVE_PERIOD;
        if n > WAVE_PERIOD {
            let mean =
                |ring: &[f64; SAMPLES]| (0..n).map(|k| ring[(self.total - n + k) % SAMPLES]).sum::<f64>() / n as f64;
            let (tp_mean, count_mean) = (mean(&self.throughput), mean(&self.counts));
            if tp_mean > 0.0 && count_mean > 0.0 {
                // The neighbouring Fourier bands measure the noise at the wave's frequency.
                let waves = n as f64 / WAVE_PERIOD as f64;
                let (adjacent1, adjacent2) = (n as f64 / (waves + 1.0), n as f64 / (waves - 1.0));
                let tp_wave = self.wave(&self.throughput, n, WAVE_PERIOD as f64).scale(1.0 / tp_mean);
                let mut error = self.wave(&self.throughput, n, adjacent1).scale(1.0 / tp_mean).abs();
                if adjacent2 <= n as f64 {
                    error = error.max(self.wave(&self.throughput, n, adjacent2).scale(1.0 / tp_mean).abs());
                }
                let count_wave = self.wave(&self.counts, n, WAVE_PERIOD as f64).scale(1.0 / count_mean);
                self.noise = if self.noise == 0.0 {
                    error
                } else {
                    NOISE_SMOOTHING * error + (1.0 - NOISE_SMOOTHING) * self.noise
                };
                if count_wave.abs() > 0.0 {
                    ratio = tp_wave.sub(count_wave.scale(self.bias)).div(count_wave);
                }
                let noise = self.noise.max(error);
                confidence = if noise > 0.0 { count_wave.abs() / noise / TARGET_SNR } else { 1.0 };
            }
        }
        // The real part: in phase with the wave, throughput follows the workers; out of phase,
        // more workers cost throughput; a quarter turn says nothing.
        let mut step = ratio.re.clamp(-1.0, 1.0) * confidence.clamp(0.0, 1.0);
        step = step.abs().powf(GAIN_EXPONENT) * step.signum() * MAX_CHANGE_PER_S * w.secs;
        step = step.min(MAX_CHANGE_PER_SAMPLE);
        self.control += step;
        let wave = (0.5 + self.control * self.noise * TARGET_SNR * WAVE_MULTIPLIER * 2.0).floor().clamp(1.0, MAX_WAVE);
        let (lo, hi) = (b.min.max(1) as f64, b.max.max(b.min.max(1)) as f64);
        self.control = self.control.min(hi - wave).max(lo);
        let high = (self.total / (WAVE_PERIOD / 2)) % 2;
        let new = ((self.control + wave * high as f64) as usize).clamp(lo as usize, hi as usize);
        self.last_count = new;
        self.min_secs = if ratio.re < 0.0 && new == lo as usize { w.secs * 10.0 * (-ratio.re).min(1.0) } else { 0.0 };
        self.state = State::HillClimb { throughput_per_s: throughput, step, wave: wave as usize, confidence };
        new
    }

    #[allow(clippy::cast_precision_loss)]
    fn reset_to(&mut self, workers: usize) {
        self.control += workers as f64 - self.last_count as f64;
        self.last_count = workers;
    }

    fn limit(&self) -> f64 {
        self.control
    }

    fn state(&self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use rand_distr::{Distribution, Normal};

    use super::*;

    /// .NET's bias, the `adapt_bias` knob's default.
    const BIAS: f64 = 0.15;

    #[test]
    fn the_knob_defaults_to_the_references_bias() {
        assert!((crate::settings::Settings::default().adapt_bias - BIAS).abs() < 1e-12);
    }

    /// Runs `samples` samples of 250 ms against `curve` (throughput at N workers), with Poisson
    /// counting noise; returns the control setting and the worker count after each.
    fn climb(curve: impl Fn(f64) -> f64, start: usize, b: &Bounds, samples: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        climb_with(curve, start, BIAS, 50.0, b, samples, seed)
    }

    fn climb_with(
        curve: impl Fn(f64) -> f64,
        start: usize,
        bias: f64,
        waiting: f64,
        b: &Bounds,
        samples: usize,
        seed: u64,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut h = HillClimb::new(start, bias);
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut workers = start;
        let (mut out, mut counts) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let mean = curve(workers as f64) * 0.25;
            let n = (mean + Normal::new(0.0, mean.sqrt()).unwrap().sample(&mut rng)).round().max(1.0) as u64;
            let w = Window {
                secs: 0.25,
                completed: n,
                service_s: 0.005,
                inflight: workers as f64,
                drops: 0,
                workers,
                waiting,
                ..Window::default()
            };
            assert!(h.ready(&w) || h.total > 0);
            workers = h.update(&w, b);
            out.push(h.limit());
            counts.push(workers as f64);
        }
        (out, counts)
    }

    fn usl(n: f64) -> f64 {
        // 5 ms service, σ 0.1, κ 0.01: the contention profile; N* = √(0.9/0.01) ≈ 9.49.
        n / (0.005 * (1.0 + 0.1 * (n - 1.0) + 0.01 * n * (n - 1.0)))
    }

    /// Where a worker more raises throughput by `bias` of its share: d ln X / d ln N = bias,
    /// the point the bias aims for (a little below the peak, where the elasticity is 0).
    fn biased_point(bias: f64) -> f64 {
        let elasticity = |n: f64| (usl(n * 1.0001).ln() - usl(n).ln()) / 1.0001f64.ln();
        let (mut lo, mut hi) = (1.0, 9.49);
        for _ in 0..60 {
            let mid = f64::midpoint(lo, hi);
            if elasticity(mid) > bias { lo = mid } else { hi = mid }
        }
        lo
    }

    #[test]
    fn it_climbs_to_the_throughput_peak_and_stays() {
        let b = Bounds { min: 1, max: 100, timeout: None };
        let (peak, aim) = ((0.9f64 / 0.01).sqrt(), biased_point(BIAS));
        assert!((aim - 7.59).abs() < 0.01, "{aim}");
        for seed in 1..=5 {
            // 200 s of samples; the second half is where it settled.
            let (_, counts) = climb(usl, 2, &b, 800, seed);
            let tail = &counts[400..];
            let mean = tail.iter().sum::<f64>() / tail.len() as f64;
            let throughput = tail.iter().map(|&n| usl(n)).sum::<f64>() / tail.len() as f64;
            assert!((mean - aim).abs() <= 0.15 * aim, "seed {seed}: settled at {mean:.2}, aiming at {aim:.2}");
            assert!(throughput >= 0.95 * usl(peak), "seed {seed}: {throughput:.0}/s at {mean:.2}");
        }
    }

    /// The `adapt_bias` knob moves where it settles: 0 aims at the peak itself (9.49 here),
    /// 0.3 at 6.0 workers for 93% of the peak's throughput. Each mean over the settled half
    /// within 15% of its own aim, as at the default (the tolerance of the test above).
    #[test]
    fn the_bias_knob_chooses_the_trade() {
        let b = Bounds { min: 1, max: 100, timeout: None };
        for (bias, expect) in [(0.0, 9.49), (0.3, 6.0)] {
            let aim = biased_point(bias);
            assert!((aim - expect).abs() < 0.01, "bias {bias}: {aim}");
            for seed in 1..=5 {
                let (_, counts) = climb_with(usl, 2, bias, 50.0, &b, 800, seed);
                let tail = &counts[400..];
                let mean = tail.iter().sum::<f64>() / tail.len() as f64;
                assert!(
                    (mean - aim).abs() <= 0.15 * aim,
                    "bias {bias}, seed {seed}: settled at {mean:.2}, aim {aim:.2}"
                );
            }
        }
    }

    #[test]
    fn on_a_flat_noisy_curve_it_does_not_wander_up() {
        // Throughput that does not depend on the workers while jobs wait (a downstream that
        // caps it): more of them buy nothing, so the control setting must not random-walk
        // upward (the bias leans it down, slowly).
        let b = Bounds { min: 1, max: 100, timeout: None };
        for seed in 1..=5 {
            let (path, _) = climb(|_| 2000.0, 20, &b, 800, seed);
            let high = path.iter().copied().fold(f64::MIN, f64::max);
            assert!(high <= 21.0, "seed {seed}: rose to {high:.2}");
            let last = path[path.len() - 1];
            assert!(last <= 20.0, "seed {seed}: ended at {last:.2}");
        }
    }

    /// The same flat curve with nobody waiting for a worker (throughput is the arrival rate):
    /// nothing to measure, so the count holds where it is, wave and all.
    #[test]
    fn with_no_job_waiting_it_holds() {
        let b = Bounds { min: 1, max: 100, timeout: None };
        let (path, counts) = climb_with(|_| 2000.0, 20, BIAS, 0.0, &b, 800, 1);
        assert!(path.iter().all(|&c| (c - 20.0).abs() < 1e-12), "the control moved: {:?}", &path[..10]);
        assert!(counts.iter().all(|&c| (c - 20.0).abs() < 1e-12), "the count moved");
    }

    #[test]
    fn an_operator_change_moves_the_control_with_it() {
        let mut h = HillClimb::new(10, BIAS);
        h.reset_to(16);
        assert!((h.limit() - 16.0).abs() < 1e-12);
        let w = Window {
            secs: 0.25,
            completed: 500,
            service_s: 0.005,
            inflight: 16.0,
            drops: 0,
            workers: 12,
            waiting: 5.0,
            ..Window::default()
        };
        h.update(&w, &Bounds { min: 1, max: 100, timeout: None });
        assert!((h.counts[0] - 12.0).abs() < 1e-12, "the window's own count is what it records");
    }

    #[test]
    fn short_samples_wait_for_accuracy() {
        let h = HillClimb { total: 1, ..HillClimb::new(20, BIAS) };
        let w = |completed| Window {
            secs: 0.25,
            completed,
            service_s: 0.005,
            inflight: 20.0,
            drops: 0,
            workers: 20,
            ..Window::default()
        };
        assert!(!h.ready(&w(100)), "19/100 ≥ 15%: accumulate");
        assert!(h.ready(&w(200)), "19/200 < 15%");
        assert!(!h.ready(&w(0)));
    }
}
