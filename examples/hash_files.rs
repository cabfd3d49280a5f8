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
use std::sync::{Arc, OnceLock};

use pooltune::work::JobContext;

/// 64 files of 256 KiB in a temporary directory, made once.
fn files() -> &'static (tempfile::TempDir, Vec<PathBuf>) {
    static FILES: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let paths = (0..64u64)
            .map(|i| {
                let p = dir.path().join(format!("file-{i}.bin"));
                let bytes: Vec<u8> = (0..256 * 1024u64).map(|b| (b.wrapping_mul(i + 7) >> 3) as u8).collect();
                std::fs::write(&p, bytes).expect("write a sample file");
                p
            })
            .collect();
        (dir, paths)
    })
}

async fn hash_one(ctx: JobContext) -> Result<(), String> {
    let (_, paths) = files();
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
    let _ = Arc::new(files());
    pooltune::App::new(hash_one).run_from_args()
}
