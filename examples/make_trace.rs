//! Makes `profiles/bursty-trace.csv`, the example trace the `bursty-trace` profile replays:
//! `cargo run --example make_trace > profiles/bursty-trace.csv`.
//!
//! Two minutes of requests that look like an inference service's: a steady 40 a second, and
//! every 10 s (give or take) a burst of 1.5 s at 400 a second: a mean of about 100 a second,
//! with 60% of the requests inside the bursts. Each request has a size (tokens, lognormal,
//! mean 150), which the profile maps to a service time of 5 ms + 0.1 ms a token (mean 20 ms).
//! A Poisson process of the same mean rate keeps 4 workers at ρ = 0.5; the bursts need about
//! 8 for as long as they last, and their queue is what the trace's p99 is made of.
//!
//! Deterministic: a fixed seed and its own generator, so the file is the same on every machine.

/// `SplitMix64`: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.next()).ln() / rate
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (1.0 - self.next(), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn main() {
    const SPAN: f64 = 120.0;
    const BASE: f64 = 40.0;
    const BURST: f64 = 400.0;
    const BURST_LEN: f64 = 1.5;
    let mut rng = Rng(20_261_202);
    // Burst starts: every 10 s, moved by up to ±3 s.
    let starts: Vec<f64> = (0..12).map(|k| f64::from(k) * 10.0 + 2.0 + (rng.next() - 0.5) * 6.0).collect();
    let in_burst = |t: f64| starts.iter().any(|&s| t >= s && t < s + BURST_LEN);
    // Tokens: lognormal with mean 150 and CV 1 (σ² = ln 2).
    let sigma = 2f64.ln().sqrt();
    let mu = 150f64.ln() - sigma * sigma / 2.0;
    println!("t_s,tokens");
    let mut t = 0.0;
    // Thinning: candidates at the burst rate, kept at the base rate outside bursts.
    loop {
        t += rng.exp(BASE + BURST);
        if t >= SPAN {
            break;
        }
        let keep = if in_burst(t) { 1.0 } else { BASE / (BASE + BURST) };
        if rng.next() < keep {
            let tokens = (mu + sigma * rng.normal()).exp().round().max(1.0);
            println!("{t:.4},{tokens}");
        }
    }
}
