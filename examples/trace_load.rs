//! How long loading a large arrival trace takes: writes 10 million decimal-second offsets (about
//! 1000 arrivals a second, microsecond digits) to a temporary file, or takes a trace's path, and
//! prints the rows read and the time `trace::load` took.
//!
//! ```sh
//! cargo run --release --example trace_load                 # 10 million generated rows
//! cargo run --release --example trace_load -- 2000000      # another row count
//! cargo run --release --example trace_load -- my-trace.csv # your own file
//! ```

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use pooltune::trace::{self, TraceSpec};

/// `rows` offsets in seconds with 6 decimals, exponential-looking gaps of mean 1 ms from a fixed
/// linear congruential sequence (so every run writes the same file).
fn write_offsets(path: &std::path::Path, rows: u64) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let (mut state, mut micros) = (0x2545_f491_4f6c_dd1d_u64, 0u64);
    for _ in 0..rows {
        writeln!(out, "{}.{:06}", micros / 1_000_000, micros % 1_000_000)?;
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let uniform = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        micros += (-uniform.ln() * 1000.0) as u64;
    }
    out.flush()
}

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let rows = arg.as_deref().map_or(Some(10_000_000), |a| a.parse::<u64>().ok());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = match (rows, arg) {
        (Some(rows), _) => {
            let path = dir.path().join("offsets.txt");
            let started = Instant::now();
            if let Err(e) = write_offsets(&path, rows) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {rows} rows in {:.2?}", started.elapsed());
            path
        }
        (None, Some(path)) => path.into(),
        (None, None) => unreachable!("no argument means the default row count"),
    };
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let started = Instant::now();
    match trace::load(&TraceSpec::new(&path)) {
        Ok(t) => {
            let took = started.elapsed();
            println!(
                "loaded {} rows ({:.0} MB) in {took:.3?}: {:.1} M rows/s, {:.0} MB/s",
                t.len(),
                bytes as f64 / 1e6,
                t.len() as f64 / took.as_secs_f64() / 1e6,
                bytes as f64 / took.as_secs_f64() / 1e6
            );
            println!("{}", t.describe);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
