//! `pooltune profiles` and `pooltune validate FILE...`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Failure, Outcome};
use crate::profile::library::{SHIPPED, shipped};
use crate::profile::parse::parse_bytes;

pub fn list() -> Outcome {
    let all = shipped().map_err(|e| Failure::Failed(anyhow::anyhow!("a shipped profile is broken: {e}")))?;
    let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in all {
        println!("{:<width$}  {}", p.name, p.description);
    }
    println!("\n{} profiles; run one with: pooltune run NAME (or a path to your own TOML file)", SHIPPED.len());
    Ok(ExitCode::SUCCESS)
}

/// Each file is checked; problems go to stderr as `FILE:LINE:COL: message`.
pub fn validate(files: &[PathBuf]) -> ExitCode {
    let mut bad = 0;
    for f in files {
        let label = f.display().to_string();
        match std::fs::read(f) {
            Err(e) => {
                eprintln!("{label}:1:1: cannot read: {e}");
                bad += 1;
            }
            Ok(bytes) => match parse_bytes(&label, &bytes) {
                Ok(p) => println!("{label}: ok ({}, {} phases)", p.name, p.phases.len()),
                Err(e) => {
                    eprintln!("{e}");
                    bad += 1;
                }
            },
        }
    }
    if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(2) }
}
