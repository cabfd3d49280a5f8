//! `pooltune --version`: the version, the commit it was built from when known, and the cargo
//! features built in.

use std::sync::OnceLock;

/// `pooltune -V`: `0.1.0 (3f2c1a9b7d10 2026-12-02)`, or the version alone outside a checkout.
pub fn short() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| {
        let commit = env!("POOLTUNE_COMMIT");
        let date = env!("POOLTUNE_COMMIT_DATE");
        let version = env!("CARGO_PKG_VERSION");
        if commit.is_empty() { version.to_string() } else { format!("{version} ({commit} {date})") }
    })
}

/// The features this build has, by cargo feature name.
pub fn features() -> Vec<&'static str> {
    [
        ("cli", cfg!(feature = "cli")),
        ("broker", cfg!(feature = "broker")),
        ("http", cfg!(feature = "http")),
        ("report", cfg!(feature = "report")),
        ("prometheus", cfg!(feature = "prometheus")),
        ("console", cfg!(feature = "console")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// `pooltune --version`: the short line, then the features and the profile.
pub fn long() -> &'static str {
    static L: OnceLock<String> = OnceLock::new();
    L.get_or_init(|| {
        let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
        format!("{}\nfeatures: {}\nbuild: {profile}", short(), features().join(", "))
    })
}
