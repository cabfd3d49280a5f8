//! `--metrics-addr`: `/metrics` for Prometheus while the process runs (`run`, dashboard or
//! headless, `sweep` and `worker`), one more client of the engine's snapshots.
//!
//! - [`addr`]: the flag's value: `HOST:PORT`, or a port alone for 127.0.0.1 (loopback unless a
//!   host is given).
//! - [`Exporter`]: binds before the run (a port in use is bad input: exit 2), then serves on a
//!   thread and current-thread runtime of its own, so a scrape never takes the workload's
//!   threads; it follows the engine's snapshots and stops when dropped.
//! - `families`: what is exported, from which snapshot fields; `buckets`: the histograms' bounds.
//!
//! The encoding is prometheus-client's: OpenMetrics text for a scraper that asks for it (as
//! Prometheus does), else the Prometheus text format 0.0.4. There is no authentication: an
//! address beyond loopback is the user's explicit choice, and the README says what it shows.

mod buckets;
mod families;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::BadInput;
use crate::metrics::Snapshot;
use families::{Exported, Families};

/// The OpenMetrics text format's content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `--metrics-addr`: `HOST:PORT` (a name is resolved, its first address taken), `[::1]:PORT`,
/// or `PORT` / `:PORT` alone for 127.0.0.1.
///
/// # Errors
/// The value is not an address, in one line with what is accepted.
pub fn addr(s: &str) -> Result<SocketAddr, String> {
    let bad = || format!("'{s}' is not an address; expected HOST:PORT (127.0.0.1:9464), or a port alone for 127.0.0.1");
    let t = s.trim();
    if let Ok(port) = t.strip_prefix(':').unwrap_or(t).parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    // A name: only a HOST:PORT whose port is a number is looked up.
    let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    match t.to_socket_addrs() {
        Ok(mut found) => found.next().ok_or_else(|| format!("'{s}': the name {host} has no address")),
        Err(e) => Err(format!("'{s}': cannot look up {host} ({e}); expected HOST:PORT, e.g. 127.0.0.1:9464")),
    }
}

/// The `/metrics` server of one process: serving from [`Exporter::bind`] until dropped.
pub struct Exporter {
    pub local: SocketAddr,
    state: Arc<Mutex<Exported>>,
    runtime: tokio::runtime::Handle,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    /// Listens on `at` and starts serving (an empty exposition until [`Exporter::follow`]).
    /// `model`: export the model's predictions (a run's or a sweep's, not a worker node's).
    ///
    /// # Errors
    /// [`BadInput`] when the address cannot be listened on (in use, not this machine's, not
    /// allowed); a runtime that cannot be built is a failure.
    pub fn bind(at: SocketAddr, model: bool) -> Result<Exporter, super::Failure> {
        let listener = TcpListener::bind(at).map_err(|e| BadInput(refusal(at, &e)))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let state = Arc::new(Mutex::new(Exported::new(model)));
        let mut registry = Registry::with_prefix("pooltune");
        registry.register_collector(Box::new(Families(Arc::clone(&state))));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let runtime = rt.handle().clone();
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("pooltune-metrics".into())
            .spawn(move || rt.block_on(serve(listener, Arc::new(registry), stopped)))?;
        Ok(Exporter { local, state, runtime, stop, thread: Some(thread) })
    }

    /// Exports the snapshots `rx` publishes from now on (the engine's, by `subscribe`).
    pub fn follow(&self, mut rx: watch::Receiver<Snapshot>) {
        let state = Arc::clone(&self.state);
        self.runtime.spawn(async move {
            loop {
                let snap = rx.borrow_and_update().clone();
                state.lock().unwrap_or_else(PoisonError::into_inner).update(snap);
                if rx.changed().await.is_err() {
                    break;
                }
            }
        });
    }

    /// The dashboard's note: where Prometheus scrapes, short enough for its side panel.
    #[must_use]
    pub fn note(&self) -> String {
        let open = if self.local.ip().is_loopback() { "" } else { " (no auth)" };
        format!("Prometheus on {}{open}", self.local)
    }

    /// The line that says where the metrics are, and, beyond loopback, who can read them.
    #[must_use]
    pub fn announcement(&self) -> String {
        let open = if self.local.ip().is_loopback() {
            ""
        } else {
            " (no authentication: anyone who can reach this address can read them)"
        };
        format!("serving Prometheus metrics at http://{}/metrics{open}", self.local)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why `at` cannot be listened on, in one line.
fn refusal(at: SocketAddr, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::AddrInUse => {
            format!("--metrics-addr {at}: the port is in use; expected a free port (or port 0 for any free one)")
        }
        ErrorKind::AddrNotAvailable => format!("--metrics-addr {at}: no interface of this machine has that address"),
        ErrorKind::PermissionDenied => {
            format!("--metrics-addr {at}: not allowed to listen there (ports below 1024 need privileges)")
        }
        _ => format!("--metrics-addr {at}: cannot listen there ({e})"),
    }
}

/// Accepts connections until `stop`; each is served HTTP/1 by hyper.
async fn serve(listener: TcpListener, registry: Arc<Registry>, mut stop: watch::Receiver<bool>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, say: the next scrape tries again.
                Err(_) => continue,
            },
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&req, &registry);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

/// `GET /metrics` (or `HEAD`): the exposition, OpenMetrics when asked for; anything else a
/// one-line refusal.
fn respond<B>(req: &Request<B>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(kind));
        r
    };
    let plain = "text/plain; charset=utf-8";
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, plain, "not found: pooltune's metrics are at /metrics\n".into());
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return reply(StatusCode::METHOD_NOT_ALLOWED, plain, "/metrics answers GET\n".into());
    }
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut body = String::new();
    let (kind, encoded) = if accept.contains("application/openmetrics-text") {
        (OPENMETRICS, text::encode(&mut body, registry))
    } else {
        (prometheus_text::CONTENT_TYPE, prometheus_text::encode(&mut body, registry))
    };
    match encoded {
        Ok(()) => reply(StatusCode::OK, kind, body),
        Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, plain, "the metrics could not be encoded\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_loopback_and_a_host_is_taken_as_given() {
        assert_eq!(addr("9464"), Ok("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(addr(":9464"), Ok("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(addr("0.0.0.0:9464"), Ok("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(addr("[::1]:0"), Ok("[::1]:0".parse().unwrap()));
        assert!(addr("localhost:9464").is_ok_and(|a| a.ip().is_loopback() && a.port() == 9464));
        for bad in ["", "metrics", "127.0.0.1", "127.0.0.1:99999", "host:port", ":"] {
            let e = addr(bad).unwrap_err();
            assert!(e.contains("expected HOST:PORT") && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
