//! For the `--metrics-addr` tests: a real Prometheus of the test's own (Debian's `prometheus`,
//! on 127.0.0.1 with a free port, a temporary store and a 1 s scrape), its HTTP API, a plain
//! HTTP GET, and a pooltune process whose `/metrics` address is read from its first line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::servers::{free_port, need};

/// How to install Prometheus.
pub const PROMETHEUS_INSTALL: &str = "install it with apt-get install prometheus";

/// `GET path` from `addr` over HTTP/1.0: the status, the `Content-Type` and the body.
pub fn get(addr: SocketAddr, path: &str, accept: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let kind = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.trim()))
        .unwrap_or_default()
        .to_string();
    Ok((status, kind, body.to_string()))
}

/// Seconds since the Unix epoch, as Prometheus' API takes times.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Every byte but letters and digits as `%XX`, for a query string.
fn encoded(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A Prometheus scraping one target every second, stopped when dropped.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    _store: tempfile::TempDir,
}

impl Prometheus {
    /// A server scraping `target`'s `/metrics`, ready to answer; `None` (skip) without the program.
    pub fn start(target: SocketAddr) -> Option<Prometheus> {
        let bin = need("prometheus", PROMETHEUS_INSTALL)?;
        let store = tempfile::tempdir().expect("a temporary directory");
        let config = store.path().join("prometheus.yml");
        // The timeout may not exceed the interval (Prometheus refuses the file otherwise).
        let yaml = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: pooltune\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&config, yaml).expect("the configuration written");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", store.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(store.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus starts");
        let p = Prometheus { child, addr, _store: store };
        let start = Instant::now();
        while !get(addr, "/-/ready", "*/*").is_ok_and(|r| r.0 == 200) {
            assert!(start.elapsed() < Duration::from_secs(60), "prometheus was not ready within a minute");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Ready is not yet scraping: targets reach the scrape loop up to 5 s later. Once `up`
        // has a sample (0: nothing listens yet), the next scrape is at most a second away, so
        // a process started now is scraped from its first second.
        while p.query("up", unix_now()).as_array().is_none_or(Vec::is_empty) {
            assert!(start.elapsed() < Duration::from_secs(60), "prometheus did not scrape within a minute");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(p)
    }

    /// The API's answer to `/api/v1/query?query=EXPR&time=T` (`data.result`).
    pub fn query(&self, expr: &str, at: f64) -> serde_json::Value {
        self.api(&format!("/api/v1/query?query={}&time={at:.3}", encoded(expr)))
    }

    /// The API's answer to a range query at a 1 s step (`data.result`).
    pub fn query_range(&self, expr: &str, from: f64, to: f64) -> serde_json::Value {
        self.api(&format!("/api/v1/query_range?query={}&start={from:.3}&end={to:.3}&step=1", encoded(expr)))
    }

    fn api(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = get(self.addr, path, "application/json").expect("prometheus answers");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        assert!(status == 200 && v["status"] == "success", "{path}: {status} {body}");
        v["data"]["result"].clone()
    }

    /// An instant query's one value (`None`: no series, or not a number).
    pub fn value(&self, expr: &str, at: f64) -> Option<f64> {
        let r = self.query(expr, at);
        assert!(r.as_array().is_some_and(|a| a.len() <= 1), "{expr}: one series at most: {r}");
        r[0]["value"][1].as_str()?.parse().ok().filter(|v: &f64| v.is_finite())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pooltune process started with `--metrics-addr 127.0.0.1:0`, its address read from the line
/// it says it on; killed when dropped.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Served {
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pooltune"))
            .args(args)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pooltune starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("http://").nth(1)?.split("/metrics").next()?.parse().ok())
            .unwrap_or_else(|| panic!("pooltune {args:?} never said where its metrics are"));
        // The rest of stderr is drained, so the process never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Served { child, addr }
    }

    /// `/metrics` in OpenMetrics text, once `ready` holds of it (or panics after `limit`: a
    /// liveness bound, not a timing assertion).
    pub fn scrape_when(&mut self, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Ok((200, kind, body)) = get(self.addr, "/metrics", "application/openmetrics-text;version=1.0.0") {
                assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
                assert!(body.ends_with("# EOF\n"), "an OpenMetrics exposition ends with # EOF");
                if ready(&body) {
                    return body;
                }
            }
            assert!(self.child.try_wait().unwrap().is_none(), "pooltune ended before its metrics were ready");
            assert!(start.elapsed() < limit, "the metrics were not ready within {limit:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
