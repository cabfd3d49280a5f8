//! Connecting to Redis: the URL's credentials (`USER:PASSWORD@`, `:PASSWORD@` for
//! `requirepass`), TLS (`rediss://`, a private CA, a client certificate), the checks that the
//! server lets us in and speaks what the adapter needs (Redis 6.2 or later), and the adapter's
//! connections and tasks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::{ErrorKind, IntoConnectionInfo, ProtocolVersion, RedisError};
use tokio::sync::{OnceCell, mpsc};

use super::conn::{Conn, Health};
use super::{Redis, queue};
use crate::engine::broker::adapter::Shared;
use crate::engine::broker::{BrokerError, BrokerSpec};

/// Commands' longest wait for an answer before the connection counts as lost.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// Publishes waiting for the publisher task.
const PUBLISH_QUEUE: usize = 4096;
/// The oldest server the adapter works with: `XAUTOCLAIM` and exclusive ranges came in 6.2.
const MIN_VERSION: (u32, u32) = (6, 2);

/// Connects, checks the server, and returns the adapter.
pub async fn connect(spec: &BrokerSpec) -> Result<Shared, BrokerError> {
    let client = client(spec)?;
    let health = Arc::new(Health::new());
    let refused = |e: &RedisError| refusal(spec, e);
    let cmd = Conn::open(client.clone(), Arc::clone(&health), ANSWER_WITHIN).await.map_err(|e| refused(&e))?;
    // Connecting sends `AUTH` when the URL has a password; a server that wants one and was given
    // none says so at the first command.
    let info: String = cmd.query(redis::cmd("INFO").arg("server")).await.map_err(|e| refused(&e))?;
    let version = check_version(&info).map_err(|reason| BrokerError::Setup {
        url: spec.shown(),
        what: "queue".into(),
        reason,
    })?;
    tracing::info!("connected to {} (Redis {version})", spec.shown());
    let reads = Conn::open(client.clone(), Arc::clone(&health), ANSWER_WITHIN).await.map_err(|e| refused(&e))?;
    let (publish, published) = mpsc::channel(PUBLISH_QUEUE);
    let (acks, acked) = mpsc::unbounded_channel();
    let key = super::key(&spec.run_name);
    tokio::spawn(queue::publisher(Arc::clone(&cmd), [key.clone(), super::meta(&spec.run_name)], published));
    tokio::spawn(queue::acker(Arc::clone(&cmd), key, acked));
    Ok(Arc::new(Redis {
        spec: spec.clone(),
        client,
        health,
        cmd,
        reads,
        consumer: consumer_name(),
        publish,
        acks,
        claims: Mutex::default(),
        totals: Mutex::default(),
        replies: OnceCell::new(),
    }))
}

/// The client for the spec's URL and files. A name without a password is a password
/// (`redis://SECRET@HOST:PORT`, as `--broker`'s shown form hides it); replies are always RESP2,
/// whatever the URL asks, since the adapter reads them so.
fn client(spec: &BrokerSpec) -> Result<redis::Client, BrokerError> {
    let sec = &spec.security;
    let option =
        |flag: &'static str, reason: &str| BrokerError::BadOption { flag, url: spec.shown(), reason: reason.into() };
    if sec.creds.is_some() {
        return Err(option(
            "--broker-creds",
            "Redis takes its credentials in the URL: redis://USER:PASSWORD@HOST:PORT",
        ));
    }
    let tls = spec.parsed.scheme() == "rediss";
    if !tls && sec.ca.is_some() {
        return Err(option("--broker-ca", "TLS to Redis is rediss://HOST:PORT"));
    }
    if !tls && sec.cert.is_some() {
        return Err(option("--broker-cert", "TLS to Redis is rediss://HOST:PORT"));
    }
    let bad = |e: &RedisError| BrokerError::BadUrl { url: spec.shown(), reason: spec.scrub(&e.to_string()) };
    let mut url = spec.parsed.clone();
    if url.password().is_none() && !url.username().is_empty() {
        let token = url.username().to_string();
        let _ = url.set_password(Some(&token));
        let _ = url.set_username("");
    }
    let info = url.into_connection_info().map_err(|e| bad(&e))?;
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP2);
    // Commands from several tasks share a connection: Nagle's delay would hold a small one back
    // behind another's unacknowledged bytes.
    let info =
        info.set_redis_settings(settings).set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    if !tls {
        return redis::Client::open(info).map_err(|e| bad(&e));
    }
    let read = |flag: &'static str, path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|e| BrokerError::BadFile { flag, path: path.clone(), reason: e.to_string() })
    };
    let root_cert = sec.ca.as_ref().map(|p| read("--broker-ca", p)).transpose()?;
    let client_tls = match (&sec.cert, &sec.key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read("--broker-cert", cert)?,
            client_key: read("--broker-key", key)?,
        }),
        _ => None,
    };
    redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls, root_cert }).map_err(|e| {
        let flag = if e.to_string().contains("key") { "--broker-key" } else { "--broker-ca" };
        let path = if flag == "--broker-key" { sec.key.clone() } else { sec.ca.clone() };
        BrokerError::BadFile { flag, path: path.unwrap_or_default(), reason: e.to_string() }
    })
}

/// What a failed first contact means: the server refused the credentials, or it was not reached.
fn refusal(spec: &BrokerSpec, e: &RedisError) -> BrokerError {
    let reason = spec.scrub(&e.to_string());
    let auth = e.kind() == ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        || reason.contains("invalid password");
    if auth {
        BrokerError::Refused { url: spec.shown(), reason }
    } else {
        BrokerError::Unreachable { url: spec.shown(), reason }
    }
}

/// The server's version from `INFO server`, refused below [`MIN_VERSION`].
fn check_version(info: &str) -> Result<String, String> {
    let version = info.lines().find_map(|l| l.strip_prefix("redis_version:")).map_or("unknown", str::trim);
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= MIN_VERSION {
        Ok(version.to_string())
    } else {
        Err(format!(
            "the server is Redis {version}; pooltune needs {}.{} or later (XAUTOCLAIM)",
            MIN_VERSION.0, MIN_VERSION.1
        ))
    }
}

/// This process's consumer name in the group, and its reply channel's: unique per process.
fn consumer_name() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("c-{:x}-{nanos:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_before_6_2_are_refused_with_their_version() {
        assert!(check_version("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n").is_ok());
        assert!(check_version("redis_version:6.2.0\r\n").is_ok());
        let e = check_version("redis_version:6.0.16\r\n").unwrap_err();
        assert!(e.contains("Redis 6.0.16") && e.contains("6.2 or later"), "{e}");
        assert!(check_version("").unwrap_err().contains("unknown"));
    }

    #[test]
    fn credentials_and_files_are_checked_before_anything_is_contacted() {
        let spec = |url: &str| BrokerSpec::new(url, "r").unwrap();
        let with = |url: &str, s: crate::engine::broker::Security| spec(url).with_security(s);
        let creds = crate::engine::broker::Security { creds: Some("x.creds".into()), ..Default::default() };
        assert!(matches!(
            client(&with("redis://127.0.0.1:1", creds)),
            Err(BrokerError::BadOption { flag: "--broker-creds", .. })
        ));
        let ca = crate::engine::broker::Security { ca: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        assert!(matches!(
            client(&with("redis://127.0.0.1:1", ca.clone())),
            Err(BrokerError::BadOption { flag: "--broker-ca", .. })
        ));
        assert!(matches!(
            client(&with("rediss://127.0.0.1:1", ca)),
            Err(BrokerError::BadFile { flag: "--broker-ca", .. })
        ));
        let c = client(&spec("redis://s3cret@127.0.0.1:6379")).unwrap();
        assert_eq!(c.get_connection_info().redis_settings().password(), Some("s3cret"));
        let c = client(&spec("redis://u:p%40ss@127.0.0.1:6379/2")).unwrap();
        let r = c.get_connection_info().redis_settings();
        assert_eq!((r.username(), r.password(), r.db()), (Some("u"), Some("p@ss"), 2));
    }
}
