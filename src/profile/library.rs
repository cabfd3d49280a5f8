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
];

/// Every shipped profile, parsed.
///
/// # Errors
/// A shipped profile that does not parse (a test keeps this from happening).
pub fn shipped() -> Result<Vec<Profile>, ProfileError> {
    SHIPPED.iter().map(|(file, text)| parse(&format!("profiles/{file}"), text)).collect()
}

/// Finds a profile by path, or by its name (or file stem) among the shipped ones.
///
/// # Errors
/// Not found (with the names that exist), unreadable, or invalid (located).
pub fn find(name_or_path: &str) -> Result<Profile, String> {
    let path = Path::new(name_or_path);
    if path.exists() {
        let bytes = std::fs::read(path).map_err(|e| format!("{name_or_path}: cannot read: {e}"))?;
        return parse_bytes(name_or_path, &bytes).map_err(|e| e.to_string());
    }
    for (file, text) in SHIPPED {
        let p = parse(&format!("profiles/{file}"), text).map_err(|e| e.to_string())?;
        if p.name == name_or_path || file.trim_end_matches(".toml") == name_or_path {
            return Ok(p);
        }
    }
    let names: Vec<&str> = SHIPPED.iter().map(|(f, _)| f.trim_end_matches(".toml")).collect();
    let hint =
        crate::suggest::closest(name_or_path, &names).map(|b| format!(" Did you mean '{b}'?")).unwrap_or_default();
    Err(format!(
        "no profile '{name_or_path}': no such file, and no shipped profile has that name.{hint} Shipped: {} (pooltune profiles lists them)",
        names.join(", ")
    ))
}
