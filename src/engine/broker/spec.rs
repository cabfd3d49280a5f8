//! Which broker, which run on it, and how to reach it securely: the `--broker` URL (checked
//! before anything is contacted), the run's name, the TLS and credential files, and the URL as
//! it may be shown (its password and token replaced by `***`).

use std::path::PathBuf;

use super::SCHEMES;

/// Files that secure the connection (`--broker-ca`, `--broker-cert`, `--broker-key`,
/// `--broker-creds`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// A private CA's certificate (PEM) the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for brokers that ask for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// NATS: a `.creds` file (JWT and nkey seed) or an nkey seed file.
    pub creds: Option<PathBuf>,
}

/// Which broker, and which run on it.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerSpec {
    /// The URL as given. It may hold a password or a token: show [`BrokerSpec::shown`] instead.
    pub url: String,
    pub parsed: url::Url,
    /// The run's name: letters, digits, `-` and `_`.
    pub run_name: String,
    pub security: Security,
}

impl std::fmt::Debug for BrokerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSpec")
            .field("url", &self.shown())
            .field("run_name", &self.run_name)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// Why the broker could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("--broker {url:?} is not accepted: {reason}; expected {}", expected())]
    BadUrl { url: String, reason: String },
    #[error("--run-name {name:?} is not accepted: expected 1 to 64 letters, digits, '-' or '_'")]
    BadRunName { name: String },
    #[error("{flag} {path:?} cannot be used: {reason}")]
    BadFile { flag: &'static str, path: PathBuf, reason: String },
    #[error("{flag} is not accepted with {url}: {reason}")]
    BadOption { flag: &'static str, url: String, reason: String },
    #[error("cannot reach the broker at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the broker at {url} refused the credentials: {reason}")]
    Refused { url: String, reason: String },
    #[error("the broker at {url} does not offer JetStream ({reason}); start nats-server with -js")]
    NoJetStream { url: String, reason: String },
    #[error("the broker at {url} would not set up the run's {what}: {reason}")]
    Setup { url: String, what: String, reason: String },
    #[error("run {run} speaks protocol version {theirs}; this pooltune speaks {ours}: run the same pooltune version on every node", ours = super::protocol::VERSION)]
    Incompatible { run: String, theirs: u32 },
}

/// The accepted URLs' shapes, for messages: `nats://HOST:PORT, …`.
fn expected() -> String {
    let plain: Vec<String> = SCHEMES.iter().map(|s| format!("{}://HOST:PORT", s[0])).collect();
    let all: Vec<&str> = SCHEMES.iter().flat_map(|s| s.iter().copied()).collect();
    format!("{} (schemes {}; credentials as USER:PASSWORD@)", plain.join(" or "), all.join(", "))
}

impl BrokerSpec {
    /// Checks the URL's form and the run's name (nothing is contacted yet).
    ///
    /// # Errors
    /// The URL or the name refused, and what is accepted.
    pub fn new(url: &str, run_name: &str) -> Result<BrokerSpec, BrokerError> {
        let bad = |reason: &str| BrokerError::BadUrl { url: redact(url), reason: reason.to_string() };
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("it is not a URL ({e})")))?;
        if !SCHEMES.iter().any(|s| s.contains(&parsed.scheme())) {
            return Err(bad("the scheme is not one pooltune speaks"));
        }
        // (No scheme here is one the URL parser knows a default port for: a port is kept as given.)
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("it names no plain host"));
        }
        match parsed.port() {
            None => return Err(bad("it names no port")),
            Some(0) => return Err(bad("the port must be 1 to 65535")),
            Some(_) => {}
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if run_name.is_empty() || run_name.len() > 64 || !run_name.chars().all(ok) {
            return Err(BrokerError::BadRunName { name: run_name.to_string() });
        }
        Ok(BrokerSpec { url: url.to_string(), parsed, run_name: run_name.to_string(), security: Security::default() })
    }

    /// The same spec with the connection's security files.
    #[must_use]
    pub fn with_security(self, security: Security) -> BrokerSpec {
        BrokerSpec { security, ..self }
    }

    /// The URL as it may be printed: a password and a token replaced by `***`.
    #[must_use]
    pub fn shown(&self) -> String {
        redact(&self.url)
    }

    /// `text` (a client's error, say) with the URL's secrets replaced by `***`.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in [self.parsed.password().unwrap_or_default(), self.parsed.username()] {
            if secret.len() >= 3 && self.parsed.password().is_some_and(|p| p == secret) {
                out = out.replace(secret, "***");
            }
        }
        let token =
            (self.parsed.password().is_none() && !self.parsed.username().is_empty()).then(|| self.parsed.username());
        if let Some(t) = token {
            out = out.replace(t, "***");
        }
        out
    }
}

/// `url` with its password (or, with a name and no password, the name: a token) replaced by
/// `***`. Text that does not parse as a URL is shown up to its `@` only, to be safe.
#[must_use]
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            } else if !u.username().is_empty() {
                let _ = u.set_username("***");
            }
            let s = u.to_string();
            // The parser adds a `/` to a URL without a path; show it as given.
            if url.ends_with('/') { s } else { s.strip_suffix('/').map_or(s.clone(), str::to_string) }
        }
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

/// A command line as it may be written (the JSON's and the report's `command`): every URL in
/// it, alone or after `--flag=`, with its password or token replaced by `***`.
#[must_use]
pub fn redact_command(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            if !(a.contains("://") && a.contains('@')) {
                return a;
            }
            match a.split_once('=').filter(|(flag, _)| flag.starts_with("--")) {
                Some((flag, url)) => format!("{flag}={}", redact(url)),
                None => redact(&a),
            }
        })
        .collect()
}

/// A run name no other run on this broker is likely to have: `run-` and the process id and the
/// time in milliseconds, in hex.
#[must_use]
pub fn unique_run_name() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("run-{:x}-{ms:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names_are_checked_before_anything_is_contacted() {
        let s = BrokerSpec::new("nats://127.0.0.1:4222", "a-b_9").unwrap();
        assert_eq!(s.shown(), "nats://127.0.0.1:4222");
        for (url, why) in [
            ("http://x:1", "scheme"),
            ("nats://x", "no port"),
            ("nats://:4222", "empty host"),
            ("nats:///x", "no plain host"),
            ("nats://x:0", "1 to 65535"),
            ("nats://x:99999", "not a URL"),
            ("nats//x:1", "not a URL"),
        ] {
            let e = BrokerSpec::new(url, "r").unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("expected nats://HOST:PORT"), "{url}: {e}");
        }
        for name in ["", "a.b", "a b", &"x".repeat(65)] {
            assert!(matches!(BrokerSpec::new("nats://x:1", name), Err(BrokerError::BadRunName { .. })), "{name}");
        }
        assert!(unique_run_name().starts_with("run-"));
    }

    #[test]
    fn secrets_never_show() {
        let s = BrokerSpec::new("nats://me:s3cret-pw@127.0.0.1:4222", "r").unwrap();
        assert_eq!(s.shown(), "nats://me:***@127.0.0.1:4222");
        assert!(!format!("{s:?}").contains("s3cret"), "{s:?}");
        assert_eq!(s.scrub("auth failed for s3cret-pw"), "auth failed for ***");
        let t = BrokerSpec::new("nats://tok3n@127.0.0.1:4222", "r").unwrap();
        assert_eq!(t.shown(), "nats://***@127.0.0.1:4222");
        let e = BrokerSpec::new("http://u:hidden@x:1", "r").unwrap_err().to_string();
        assert!(!e.contains("hidden"), "{e}");
        let args = ["run", "--broker", "amqp://me:pw1@h:1", "--broker=nats://tok@h:2", "x@y"].map(String::from);
        assert_eq!(redact_command(args), ["run", "--broker", "amqp://me:***@h:1", "--broker=nats://***@h:2", "x@y"]);
    }
}
