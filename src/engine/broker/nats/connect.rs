//! Connecting to NATS: credentials (user and password or a token in the URL, a `.creds` or
//! nkey file), TLS (`tls://`, a private CA, a client certificate), reconnection, and the check
//! that the server offers JetStream.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::RwLock;

use super::{JS_TIMEOUT, Nats};
use crate::engine::broker::adapter::Shared;
use crate::engine::broker::link::Link;
use crate::engine::broker::{BrokerError, BrokerSpec};

/// How long connecting may take before the broker counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The pause before the first reconnection try, added per try up to [`RECONNECT_MAX`].
const RECONNECT_STEP: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// Connects, checks JetStream, and returns the adapter.
pub async fn connect(spec: &BrokerSpec) -> Result<Shared, BrokerError> {
    let unreachable = |reason: String| BrokerError::Unreachable { url: spec.shown(), reason };
    let link = Arc::new(Link::default());
    let events = Arc::clone(&link);
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .name("pooltune")
        .max_reconnects(None)
        // Tries again every 100 ms at first, then at most every second: a server back after a
        // restart is found within a second (the client's own default waits up to 4 s).
        .reconnect_delay_callback(|tries| {
            RECONNECT_STEP.saturating_mul(u32::try_from(tries).unwrap_or(u32::MAX)).min(RECONNECT_MAX)
        })
        .event_callback(move |e| {
            match e {
                async_nats::Event::Disconnected => events.lost(),
                async_nats::Event::Connected => events.back(),
                other => tracing::info!("broker connection: {other}"),
            }
            std::future::ready(())
        });
    let sec = &spec.security;
    // Credentials in the URL are given to the client apart, and the URL it is handed has none:
    // a name and a password are a user's; a name alone is a token (`nats://TOKEN@HOST:PORT`).
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().to_string();
    let user = decode(spec.parsed.username());
    match spec.parsed.password() {
        Some(pass) => options = options.user_and_password(user, decode(pass)),
        None if !user.is_empty() => options = options.token(user),
        None => {}
    }
    let mut bare = spec.parsed.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let url = bare.to_string();
    if let Some(creds) = &sec.creds {
        let text = std::fs::read_to_string(creds).map_err(|e| BrokerError::BadFile {
            flag: "--broker-creds",
            path: creds.clone(),
            reason: e.to_string(),
        })?;
        options = if text.trim_start().starts_with("SU") {
            options.nkey(text.trim().to_string())
        } else {
            options.credentials(&text).map_err(|e| BrokerError::BadFile {
                flag: "--broker-creds",
                path: creds.clone(),
                reason: format!("neither a .creds file nor an nkey seed ({e})"),
            })?
        };
    }
    if let Some(ca) = &sec.ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&sec.cert, &sec.key) {
        options = options.add_client_certificate(cert.clone(), key.clone()).require_tls(true);
    }
    let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(url.as_str()))
        .await
        .map_err(|_| unreachable("no answer".into()))?
        .map_err(|e| refusal(spec, &e))?;
    jetstream_enabled(&client).await.map_err(|reason| BrokerError::NoJetStream { url: spec.shown(), reason })?;
    let mut js = jetstream::new(client.clone());
    // Requests (and the consumer's, which keeps a copy) give up after JS_TIMEOUT, so one the
    // server took with it when it stopped does not hold a task for the client's default 10 s.
    js.set_timeout(JS_TIMEOUT);
    Ok(Arc::new(Nats { spec: spec.clone(), client, js, link, consumer: RwLock::new(None), seq0: AtomicU64::new(0) }))
}

/// A connection refused: by the server for its credentials, or for any other reason (its TLS
/// among them), the error's causes included and the URL's secrets scrubbed.
fn refusal(spec: &BrokerSpec, e: &async_nats::ConnectError) -> BrokerError {
    use async_nats::ConnectErrorKind as K;
    let mut reason = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        cause = c.source();
    }
    let reason = spec.scrub(&reason);
    match e.kind() {
        K::Authentication | K::AuthorizationViolation => BrokerError::Refused { url: spec.shown(), reason },
        _ => BrokerError::Unreachable { url: spec.shown(), reason },
    }
}

/// Whether the server answers JetStream's account request without an error. The answer is read
/// as plain JSON: async-nats 0.51's typed account info does not parse a 2.9 server's.
async fn jetstream_enabled(client: &async_nats::Client) -> Result<(), String> {
    let reply = client.request("$JS.API.INFO", bytes::Bytes::new()).await.map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("an answer that is not JSON: {e}"))?;
    match v.get("error") {
        Some(e) => Err(e.get("description").and_then(|d| d.as_str()).unwrap_or("an error").to_string()),
        None => Ok(()),
    }
}
