//! The downstream as the run saw it: the Universal Scalability Law fitted
//! ([`crate::model::usl_fit`]) to the run's own (jobs inside, throughput) points, drawn as the
//! fitted curve over the measured points (chart id `usl`), with σ, κ, N* and their intervals.
//!
//! A run's points come from its CSV series, one row a window: the row's `utilisation` times its
//! `workers` is the mean number of jobs inside over the tick, and times the tick's length the
//! service time its jobs took; `completed_per_s` times the length is its jobs. A sweep's come
//! from its steps ([`crate::sweep::SweepReport::usl_points`]).

use std::fmt::Write as _;

use super::ReportError;
use super::charts::{self, BLUE, Chart, Line, ORANGE, XAxis};
use super::input::Series;
use super::page::{esc, figure};
use crate::model::usl_points::Points;

/// The series' windows, summed per worker count (the first row after each change left out).
#[must_use]
pub fn series_points(s: &Series) -> Points {
    let mut p = Points::new();
    let (workers, util, done, paused) =
        (s.col("workers"), s.col("utilisation"), s.col("completed_per_s"), s.col("paused"));
    for i in 0..s.t.len() {
        let dt = if i == 0 { s.t[0] } else { s.t[i] - s.t[i - 1] };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (w, jobs) = (workers[i].round().max(0.0) as u32, (done[i] * dt).round().max(0.0) as u64);
        p.push(w, dt, jobs, util[i] * workers[i] * dt, paused[i] != 0.0);
    }
    p
}

/// The section: the fit's figures and its chart, or what the fit still needs. Nothing when the
/// run measured a single worker count and configured no downstream (no question to answer).
///
/// # Errors
/// A chart could not be drawn.
pub fn section(out: &mut String, points: &Points, always: bool) -> Result<(), ReportError> {
    if points.counts() < 2 && !always {
        return Ok(());
    }
    out.push_str("<h2>The downstream, fitted (Universal Scalability Law)</h2>\n");
    let fit = match points.fit() {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(&format!("{e}.")));
            return Ok(());
        }
    };
    let _ = writeln!(
        out,
        "<p>Fitted from {} worker counts: {} (95% intervals); a job alone holds its worker {:.3} ms.{}</p>",
        fit.points.len(),
        esc(&fit.line()),
        fit.alone_s * 1e3,
        fit.advice.as_deref().map(|a| format!(" {}.", esc(a))).unwrap_or_default()
    );
    let measured: Vec<(f64, f64)> = fit.points.iter().map(|p| (p.inside, p.inside / p.hold_s)).collect();
    let top = fit.points.iter().map(|p| p.inside).fold(1.0, f64::max);
    let end = fit.peak.map_or(top, |n| n.value * 1.5).max(top) * 1.05;
    let curve: Vec<(f64, f64)> = (0..=100)
        .map(|k| 1.0 + (end - 1.0) * f64::from(k) / 100.0)
        .map(|n| (n, n / (fit.alone_s * fit.usl.stretch(n))))
        .collect();
    let c = Chart {
        title: "Throughput against jobs inside",
        x_label: "jobs inside the downstream (busy workers)",
        y_label: "completed jobs per second",
        x_axis: XAxis::Linear,
        lines: vec![Line::new("measured", measured, BLUE).dots(), Line::new("USL fit", curve, ORANGE).dashed()],
        spans: Vec::new(),
        ring: fit.peak.zip(fit.peak_per_s).map(|(n, x)| (format!("N* {:.1}", n.value), (n.value, x))),
    };
    let svg = charts::line_chart(&c)?;
    figure(
        out,
        "usl",
        &svg,
        "Each worker count's steady windows as one point (the first window after a change left out), and the law X(N) = N / (S₁·(1 + σ(N−1) + κN(N−1))) fitted to them by weighted least squares on the holding time N/X.",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::usl::Usl;
    use crate::report::CSV_HEADER;

    /// Rows of 0.5 s at each count, the law's throughput, every worker busy.
    fn series(counts: &[u32]) -> Series {
        let law = Usl { contention: 0.1, coherency: 0.01, capacity: None };
        let header: Vec<&str> = CSV_HEADER.split(',').collect();
        let mut csv = format!("{CSV_HEADER}\n");
        let mut t = 0.0;
        for &n in counts {
            for _ in 0..4 {
                t += 0.5;
                let cell = |h: &str| match h {
                    "t_s" => format!("{t:.3}"),
                    "workers" => n.to_string(),
                    "completed_per_s" => format!("{:.1}", law.throughput(n, 0.005)),
                    "utilisation" => "1".into(),
                    _ => "0".into(),
                };
                csv.push_str(&header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(","));
                csv.push('\n');
            }
        }
        Series::parse(&csv).unwrap()
    }

    #[test]
    fn the_fitted_curve_is_drawn_over_the_points() {
        let p = series_points(&series(&[2, 4, 9, 20, 30]));
        assert_eq!(p.counts(), 5);
        // Three rows a count after the first (left out): 1.5 s.
        assert!(p.points().iter().all(|q| (q.inside - f64::from(q.workers)).abs() < 1e-9), "{:?}", p.points());
        let mut out = String::new();
        section(&mut out, &p, false).unwrap();
        assert!(out.contains("id=\"usl\"") && out.contains("N* 9.5"), "{out}");
    }

    #[test]
    fn one_count_says_nothing_and_two_say_what_is_missing() {
        let mut out = String::new();
        section(&mut out, &series_points(&series(&[4])), false).unwrap();
        assert!(out.is_empty());
        section(&mut out, &series_points(&series(&[4, 8])), false).unwrap();
        assert!(out.contains("measure 1 more, e.g. at 16 workers") && !out.contains("<svg"), "{out}");
    }
}
