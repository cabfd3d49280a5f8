//! The built-in HTTP service (`--target URL`): each job sends one request through a shared,
//! pooled HTTP/1.1 client (hyper; https through rustls, trusting Mozilla's root certificates and
//! any given with `--ca-cert`). 2xx is a success; any other status, and any error, is a failure
//! with its text; statuses are counted for the breakdown.
//!
//! What can be checked before the run is (a URL that does not parse, a scheme other than
//! `http` or `https`, a bad header, an unreadable body file or CA file); the rest (connection
//! refused, DNS failure, a certificate the client does not trust, a server that stops
//! answering) shows as counted failures with the error's text. Nothing hangs:
//! connecting is bounded by [`CONNECT_TIMEOUT`] and a whole request by [`REQUEST_TIMEOUT`] (the
//! `timeout` knob, when set, cuts sooner).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Serialize;

use crate::work::{JobContext, JobFuture, Work};

/// The longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a request may take, whatever the `timeout` knob says.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a target cannot be used, found before the run starts; every one is the user's input.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--target '{url}' is not a URL ({reason}); expected e.g. http://127.0.0.1:8080/path")]
    NotUrl { url: String, reason: String },
    #[error("--target '{0}' has no http:// or https:// scheme; expected e.g. http://127.0.0.1:8080/path")]
    Scheme(String),
    #[error("--target '{0}' has no host; expected e.g. http://127.0.0.1:8080/path")]
    NoHost(String),
    #[error("--method '{0}' is not an HTTP method; expected GET, POST, PUT, DELETE, ...")]
    Method(String),
    /// `problem` follows the quoted header: "has no ':'; expected 'Name: value'".
    #[error("--header '{header}'{problem}")]
    Header { header: String, problem: String },
    #[error("--body and --body-file both given; choose one")]
    TwoBodies,
    #[error("--body-file '{path}' cannot be read: {source}")]
    BodyFile { path: String, source: std::io::Error },
    /// The CA file cannot be read, is not PEM, or holds nothing usable; or TLS cannot start.
    #[error("{0}")]
    Trust(String),
}

/// What every job sends.
#[derive(Debug, Clone)]
pub struct Target {
    pub uri: Uri,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Target {
    /// Builds a target from the command line's words.
    ///
    /// # Errors
    /// What is wrong, naming the flag and what it accepts.
    pub fn new(
        url: &str,
        method: &str,
        headers: &[String],
        body: Option<&str>,
        body_file: Option<&Path>,
    ) -> Result<Target, TargetError> {
        let uri: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| TargetError::NotUrl {
            url: url.into(),
            reason: e.to_string(),
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(TargetError::Scheme(url.into()));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(TargetError::NoHost(url.into()));
        }
        let method = Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| TargetError::Method(method.into()))?;
        let mut map = HeaderMap::new();
        for h in headers {
            let bad = |problem: String| TargetError::Header { header: h.clone(), problem };
            let (name, value) = h.split_once(':').ok_or_else(|| bad(" has no ':'; expected 'Name: value'".into()))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| bad(format!(": '{}' is not a header name", name.trim())))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| bad(": the value is not a valid header value".into()))?;
            map.append(name, value);
        }
        let body = match (body, body_file) {
            (Some(_), Some(_)) => return Err(TargetError::TwoBodies),
            (Some(b), None) => Bytes::from(b.to_string()),
            (None, Some(p)) => Bytes::from(
                std::fs::read(p).map_err(|source| TargetError::BodyFile { path: p.display().to_string(), source })?,
            ),
            (None, None) => Bytes::new(),
        };
        Ok(Target { uri, method, headers: map, body })
    }
}

/// Responses by status, and errors that got no response.
#[derive(Debug, Default)]
pub struct HttpStats {
    statuses: Mutex<BTreeMap<u16, u64>>,
    errors: AtomicU64,
}

/// The breakdown as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HttpReport {
    pub target: String,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no response (connection refused, DNS, timeouts inside the client).
    pub errors: u64,
}

impl HttpStats {
    #[must_use]
    pub fn report(&self, target: &Target) -> HttpReport {
        HttpReport {
            target: format!("{} {}", target.method, target.uri),
            statuses: self.statuses.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

impl HttpReport {
    /// "200: 950 · 503: 50 · errors: 0".
    #[must_use]
    pub fn line(&self) -> String {
        let mut parts: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        parts.push(format!("errors: {}", self.errors));
        parts.join(" · ")
    }
}

/// The HTTP service as a [`Work`].
pub struct HttpWork {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    pub target: Arc<Target>,
    pub stats: Arc<HttpStats>,
}

impl HttpWork {
    /// A client for `target`; https trusts what `trust` says.
    ///
    /// # Errors
    /// The CA file cannot be read or holds no usable certificate.
    pub fn new(target: Target, trust: &Trust) -> Result<Self, TargetError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(trust).map_err(TargetError::Trust)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            target: Arc::new(target),
            stats: Arc::new(HttpStats::default()),
        })
    }
}

/// Which server certificates an https target may present.
#[derive(Debug, Clone, Default)]
pub struct Trust<'a> {
    /// PEM CA certificates trusted besides Mozilla's roots (`--ca-cert`).
    pub ca_cert: Option<&'a Path>,
    /// Accept any certificate (`--insecure`, curl's `-k`): the handshake's signatures are still
    /// checked, the certificate's issuer, name and dates are not.
    pub insecure: bool,
}

/// TLS for https targets: ring's primitives, Mozilla's root certificates, plus any in the CA file.
fn tls_config(trust: &Trust<'_>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?;
    if trust.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(p) = trust.ca_cert {
        let shown = p.display();
        let certs = CertificateDer::pem_file_iter(p)
            .map_err(|e| format!("--ca-cert '{shown}' cannot be read: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--ca-cert '{shown}' is not PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-cert '{shown}' holds no certificate; expected PEM (-----BEGIN CERTIFICATE-----)"
            ));
        }
        for c in certs {
            roots.add(c).map_err(|e| format!("--ca-cert '{shown}': a certificate cannot be a root: {e}"))?;
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `--insecure`: any certificate is accepted; the handshake's signatures are still verified, so
/// the connection is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An error with its causes: hyper's own says only "client error (Connect)".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Work for HttpWork {
    fn call(&self, _ctx: JobContext) -> JobFuture {
        let (client, t, stats) = (self.client.clone(), Arc::clone(&self.target), Arc::clone(&self.stats));
        Box::pin(async move {
            let mut req = Request::builder().method(t.method.clone()).uri(t.uri.clone());
            if let Some(h) = req.headers_mut() {
                h.extend(t.headers.clone());
            }
            let req = req.body(Full::new(t.body.clone())).map_err(|e| e.to_string())?;
            let sent = async {
                let resp = client.request(req).await.map_err(|e| chain(&e))?;
                let status = resp.status();
                // Read the body through, so the connection goes back to the pool.
                resp.into_body().collect().await.map_err(|e| chain(&e))?;
                Ok::<_, String>(status)
            };
            let result = match tokio::time::timeout(REQUEST_TIMEOUT, sent).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())),
            };
            match result {
                Ok(status) => {
                    *stats
                        .statuses
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(status.as_u16())
                        .or_insert(0) += 1;
                    if status.is_success() { Ok(()) } else { Err(format!("HTTP {status}")) }
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    Err(e)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Target, TargetError};

    #[test]
    fn targets_are_checked_up_front() {
        for (url, method, headers, want) in [
            ("not a url", "GET", vec![], "is not a URL"),
            ("ftp://x/", "GET", vec![], "no http:// or https:// scheme"),
            ("http://127.0.0.1:1/", "GE T", vec![], "not an HTTP method"),
            ("http://127.0.0.1:1/", "GET", vec!["NoColon".to_string()], "has no ':'"),
        ] {
            let err = Target::new(url, method, &headers, None, None).unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
        let both = Target::new("http://127.0.0.1:8080/x", "GET", &[], Some("a"), Some("b".as_ref())).unwrap_err();
        assert!(matches!(both, TargetError::TwoBodies), "{both:?}");
        let t = Target::new("http://127.0.0.1:8080/x", "post", &["X-A: 1".into()], Some("hi"), None).unwrap();
        assert_eq!(t.method, hyper::Method::POST);
        assert_eq!(t.headers["x-a"], "1");
        assert_eq!(&t.body[..], b"hi");
    }
}
