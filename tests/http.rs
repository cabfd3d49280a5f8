//! The HTTP service against a real server started here on 127.0.0.1 (port 0): known delay,
//! known failures, over http and over https (a CA made for the test); then a refused
//! connection, a name that does not resolve, an untrusted certificate, and targets refused
//! before the run.

mod common;

use std::convert::Infallible;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;

/// The server's delay before answering.
const DELAY: Duration = Duration::from_millis(2);

/// Serves on a fresh loopback port, over TLS when given its config: every 10th request (by
/// arrival) gets a 503.
fn start_server(tls: Option<Arc<ServerConfig>>) -> (u16, Arc<AtomicU64>) {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let counter = Arc::clone(&counter);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |_req| {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::time::sleep(DELAY).await;
                            let status = if n % 10 == 9 { 503 } else { 200 };
                            Ok::<_, Infallible>(
                                Response::builder().status(status).body(Full::new(Bytes::from_static(b"ok"))).unwrap(),
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    if let Some(config) = tls {
                        // A client that does not trust the certificate ends the handshake here.
                        if let Ok(stream) = TlsAcceptor::from(config).accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    } else {
                        let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                    }
                });
            }
        });
    });
    (port, served)
}

/// A CA made for this test, and a server certificate for 127.0.0.1 that it signed: the CA's PEM
/// (what `--ca-cert` takes) and the server's TLS config.
fn test_ca() -> (String, Arc<ServerConfig>) {
    let ca = common::tls::TestCa::new();
    let (cert, key) = ca.sign(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], PrivatePkcs8KeyDer::from(key.serialize_der()).into())
        .unwrap();
    (ca.pem, Arc::new(config))
}

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn requests_are_measured_and_statuses_counted() {
    let (port, served) = start_server(None);
    let url = format!("http://127.0.0.1:{port}/work");
    let o = pooltune(&[
        "run",
        "--headless",
        "--service-kind",
        "http",
        "--target",
        &url,
        "--rate",
        "300",
        "--workers",
        "8",
        "--threads",
        "2",
        "--duration",
        "2s",
        "--json",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = |k: &str| v["jobs"][k].as_u64().unwrap();
    let ok = v["http"]["statuses"]["200"].as_u64().unwrap();
    let bad = v["http"]["statuses"]["503"].as_u64().unwrap();
    assert_eq!(v["http"]["errors"], 0);
    // Every request the server answered is a job, counted by its status.
    assert_eq!(ok + bad, served.load(Ordering::SeqCst));
    assert_eq!(n("completed"), ok, "2xx is a success");
    assert_eq!(n("failed"), bad, "any other status is a failure");
    assert_eq!(bad, (ok + bad) / 10, "every 10th answer was a 503");
    assert!(n("offered") > 300, "{}", v["jobs"]);
    // The service time includes the server's delay; latency counts from the intended arrival.
    let service = v["service_ms"]["mean"].as_f64().unwrap();
    assert!(service >= DELAY.as_secs_f64() * 1e3, "service {service} ms below the server's delay");
    assert!(v["latency_ms"]["mean"].as_f64().unwrap() >= service);
    assert!(v["recent_errors"].as_array().unwrap().iter().all(|e| e.as_str().unwrap().contains("503")));
}

#[test]
fn a_refused_connection_is_a_counted_failure_with_its_text() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let o = pooltune(&["run", "--headless", "--target", &url, "--rate", "50", "--duration", "1s", "--json", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["jobs"]["completed"], 0);
    assert!(v["jobs"]["failed"].as_u64().unwrap() > 10);
    assert_eq!(v["http"]["errors"], v["jobs"]["failed"]);
    let err = v["recent_errors"][0].as_str().unwrap().to_lowercase();
    assert!(err.contains("refused"), "{err}");
}

/// Runs at 100 requests/s for 1 s against `url`, returning the JSON summary.
fn run_against(url: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "--headless", "--target", url, "--rate", "100", "--duration", "1s", "--json", "-"];
    args.extend(extra);
    let o = pooltune(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn https_trusts_the_given_ca_counts_an_untrusted_certificate_as_a_failure_and_insecure_takes_it() {
    let (ca_pem, tls) = test_ca();
    let (port, served) = start_server(Some(tls));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = format!("https://127.0.0.1:{port}/work");

    let v = run_against(&url, &["--ca-cert", ca_file.to_str().unwrap()]);
    let ok = v["http"]["statuses"]["200"].as_u64().unwrap();
    assert_eq!(v["http"]["errors"], 0, "{}", v["recent_errors"]);
    assert_eq!(v["jobs"]["completed"].as_u64().unwrap(), ok);
    assert!(ok > 50, "{}", v["jobs"]);
    assert_eq!(v["http"]["statuses"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum::<u64>(), {
        served.load(Ordering::SeqCst)
    });

    // Without the CA, Mozilla's roots do not know the certificate: every job fails, saying why.
    let v = run_against(&url, &[]);
    assert_eq!(v["jobs"]["completed"], 0);
    assert!(v["jobs"]["failed"].as_u64().unwrap() > 50, "{}", v["jobs"]);
    assert_eq!(v["http"]["errors"], v["jobs"]["failed"]);
    let err = v["recent_errors"][0].as_str().unwrap();
    assert!(err.contains("certificate") && err.contains("UnknownIssuer"), "{err}");

    // --insecure accepts it, as curl -k would.
    let v = run_against(&url, &["--insecure"]);
    assert_eq!(v["http"]["errors"], 0, "{}", v["recent_errors"]);
    assert!(v["jobs"]["completed"].as_u64().unwrap() > 50, "{}", v["jobs"]);
}

#[test]
fn a_name_that_does_not_resolve_is_a_counted_failure_with_its_text() {
    // `.invalid` is reserved never to resolve (RFC 6761).
    let v = run_against("http://no-such-host.invalid/", &[]);
    assert_eq!(v["jobs"]["completed"], 0);
    assert!(v["jobs"]["failed"].as_u64().unwrap() > 0, "{}", v["jobs"]);
    assert_eq!(v["http"]["errors"], v["jobs"]["failed"]);
    let err = v["recent_errors"][0].as_str().unwrap().to_lowercase();
    assert!(err.contains("dns"), "{err}");
}

#[test]
fn bad_targets_are_refused_before_the_run() {
    for (args, want) in [
        (vec!["--target", "ftp://127.0.0.1:1/"], "no http:// or https:// scheme"),
        (vec!["--target", "https://127.0.0.1:1/", "--ca-cert", "/no/such/ca.pem"], "cannot be read"),
        (vec!["--target", "https://127.0.0.1:1/", "--ca-cert", "Cargo.toml"], "holds no certificate"),
        (vec!["--target", "::nonsense"], "is not a URL"),
        (vec!["--target", "http://127.0.0.1:1/", "--header", "broken"], "has no ':'"),
        (vec!["--target", "http://127.0.0.1:1/", "--body-file", "/no/such/file"], "cannot be read"),
    ] {
        let mut all = vec!["run", "--headless"];
        all.extend(args);
        let o = pooltune(&all);
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want) && err.lines().count() == 1, "{all:?}: {err}");
    }
}
