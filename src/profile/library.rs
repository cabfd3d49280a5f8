//! The shipped profiles (compiled in, so `pooltune run knee` works from any directory) and
//! finding a profile by path or by name.

use std::path::Path;

use super::Profile;
use super::parse::{ProfileError, parse, parse_bytes};

/// File name and text of each shipped profile, in `pooltune profiles` order.
pub const SHIPPED: &[(&str, &str)] = &[
    ("steady.toml", include_str!("../../profiles/steady.toml")),
    ("knee.toml", include_str!("../../profiles/knee.toml")),
    ("overload-block.toml", include_str!("../../profiles/overload-block.toml")),
    ("overload-reject.toml", include_str!("../../profiles/overload-reject.toml")),
    ("overload-drop-oldest.toml", include_str!("../../profiles/overload-drop-oldest.toml")),
    ("burst.toml", include_str!("../../profiles/burst.toml")),
    ("scale-out.toml", include_str!("../../profiles/scale-out.toml")),
    ("heavy-tail.toml", include_str!("../../profiles/heavy-tail.toml")),
    ("blocking-mistake.toml", include_str!("../../profiles/blocking-mistake.toml")),
    ("batch.toml", include_str!("../../profiles/batch.toml")),
    ("contention.toml", include_str!("../../profiles/contention.toml")),
    ("bursty-trace.toml", include_str!("../../profiles/bursty-trace.toml")),
];

/// File name and bytes of each trace a shipped profile replays (`[arrivals]`), compiled in
/// with it.
pub const SHIPPED_TRACES: &[(&str, &[u8])] = &[("bursty-trace.csv", include_bytes!("../../profiles/bursty-trace.csv"))];

/// A path a profile in `dir` names: relative ones are relative to `dir`.
fn beside(dir: Option<&Path>, path: &Path) -> std::path::PathBuf {
    match dir {
        Some(d) if path.is_relative() => d.join(path),
        _ => path.to_path_buf(),
    }
}

/// Finds a profile's trace: beside the profile (`dir`) when the file is there, else a shipped
/// trace of that name (compiled in), else where the profile says (reading it says what is
/// wrong). Its service sample is beside the profile.
fn resolve(mut p: Profile, dir: Option<&Path>) -> Profile {
    if let Some(s) = p.service_sample.as_mut() {
        s.spec.path = beside(dir, &s.spec.path);
    }
    if let Some(a) = p.arrivals.as_mut() {
        let beside = beside(dir, &a.spec.path);
        let name = a.spec.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match SHIPPED_TRACES.iter().find(|(f, _)| *f == name) {
            Some((_, bytes)) if !beside.exists() => a.embedded = Some(bytes),
            _ => a.spec.path = beside,
        }
    }
    p
}

/// Every shipped profile, parsed.
///
/// # Errors
/// A shipped profile that does not parse (a test keeps this from happening).
pub fn shipped() -> Result<Vec<Profile>, ProfileError> {
    SHIPPED.iter().map(|(file, text)| parse(&format!("profiles/{file}"), text)).collect()
}

/// Why `pooltune run NAME` found no profile to run.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// Neither a file nor a shipped profile's name; `suggestion` is the nearest shipped name.
    #[error(
        "no profile '{name}': no such file, and no shipped profile has that name.{} Shipped: {} (pooltune profiles lists them)",
        suggestion.map(|b| format!(" Did you mean '{b}'?")).unwrap_or_default(),
        shipped_names().join(", ")
    )]
    NotFound { name: String, suggestion: Option<&'static str> },
    #[error("{path}: cannot read: {source}")]
    Unreadable { path: String, source: std::io::Error },
    /// The file was read but is not a valid profile (located).
    #[error(transparent)]
    Invalid(#[from] ProfileError),
}

/// The shipped profiles' names (file stems), in `pooltune profiles` order.
fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(f, _)| f.trim_end_matches(".toml")).collect()
}

/// Finds a profile by path, or by its name (or file stem) among the shipped ones.
///
/// # Errors
/// Not found (with the names that exist), unreadable, or invalid (located).
pub fn find(name_or_path: &str) -> Result<Profile, FindError> {
    let path = Path::new(name_or_path);
    if path.exists() {
        let bytes =
            std::fs::read(path).map_err(|source| FindError::Unreadable { path: name_or_path.to_string(), source })?;
        return Ok(resolve(parse_bytes(name_or_path, &bytes)?, path.parent()));
    }
    for (file, text) in SHIPPED {
        let p = parse(&format!("profiles/{file}"), text)?;
        if p.name == name_or_path || file.trim_end_matches(".toml") == name_or_path {
            return Ok(resolve(p, None));
        }
    }
    Err(FindError::NotFound {
        name: name_or_path.to_string(),
        suggestion: crate::suggest::closest(name_or_path, &shipped_names()),
    })
}
