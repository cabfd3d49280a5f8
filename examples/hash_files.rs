//! Tuning a real async workload with pooltune: each job reads one file and hashes it.
//!
//! The job mixes I/O (tokio's file reads go to the blocking pool) with CPU (hashing on the
//! runtime thread), so the best worker count depends on both: watch the runtime panel's
//! scheduling delay and the model's gap as you turn `w`/`W`. Files that cannot be read, and
//! every 97th job (a simulated bad input), fail with their error; `--timeout` cancels slow ones.
//!
//! ```sh
//! cargo run --release --example hash_files                                  # the dashboard
//! cargo run --release --example hash_files -- --headless --rate 400 --workers 8 --duration 10s
//! ```

use std::hash::{DefaultHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use pooltune::work::JobContext;

/// 64 files of 256 KiB in a temporary directory, which is removed when the returned `TempDir`
/// is dropped (at the end of `main`).
fn make_files() -> std::io::Result<(tempfile::TempDir, Vec<PathBuf>)> {
    let dir = tempfile::tempdir()?;
    let mut paths = Vec::with_capacity(64);
    for i in 0..64u64 {
        let p = dir.path().join(format!("file-{i}.bin"));
        let bytes: Vec<u8> = (0..256 * 1024u64).map(|b| (b.wrapping_mul(i + 7) >> 3) as u8).collect();
        std::fs::write(&p, bytes)?;
        paths.push(p);
    }
    Ok((dir, paths))
}

async fn hash_one(paths: Arc<Vec<PathBuf>>, ctx: JobContext) -> Result<(), String> {
    if ctx.id % 97 == 96 {
        return Err(format!("job {}: simulated bad input", ctx.id));
    }
    let path = &paths[(ctx.id % paths.len() as u64) as usize];
    let bytes = tokio::fs::read(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = DefaultHasher::new();
    h.write(&bytes);
    std::hint::black_box(h.finish());
    Ok(())
}

fn main() -> ExitCode {
    let (dir, paths) = match make_files() {
        Ok(made) => made,
        Err(e) => {
            eprintln!("hash_files: cannot make the sample files in the temporary directory: {e}");
            return ExitCode::from(1);
        }
    };
    let paths = Arc::new(paths);
    let code = pooltune::App::new(move |ctx| hash_one(Arc::clone(&paths), ctx)).run_from_args();
    // The sample files go with the directory, whatever the run's outcome.
    drop(dir);
    code
}
