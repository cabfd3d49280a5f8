//! The connection to RabbitMQ: the URL's credentials and virtual host, TLS (`amqps://`, a
//! private CA, a client certificate), the refusals told apart (credentials, virtual host, an
//! unreachable server), and the supervisor that reconnects after an outage and records it.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::ExchangeDeclareOptions;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind, ExchangeKind};
use tokio::sync::watch;

use super::Amqp;
use crate::engine::broker::adapter::{Shared, Topic};
use crate::engine::broker::link::Link;
use crate::engine::broker::{BrokerError, BrokerSpec};

/// How long connecting may take before the broker counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The heartbeat asked of the server: a peer silent for two of them is gone.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// The pause before the first reconnection try, added per try up to [`RECONNECT_MAX`].
const RECONNECT_STEP: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);
/// How often the supervisor looks at the connection's state besides its events.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// One connection, and the channel every short exchange (declarations, readings, control
/// words, replies) uses; the jobs' publishing and consuming channels are their own.
pub struct Session {
    pub conn: Connection,
    /// Made again when an error closed it (a passive declaration of a missing queue does).
    admin: tokio::sync::Mutex<Channel>,
    /// Publishes jobs, in confirm mode.
    publish: tokio::sync::Mutex<Option<Channel>>,
    /// Publishes control words and answers (an answer to a requester gone may close it).
    replies: tokio::sync::Mutex<Option<Channel>>,
    /// Counts connections made, so a consumer knows its own is gone.
    pub epoch: u64,
}

impl Session {
    /// The admin channel, opened again if an error closed it.
    pub async fn admin(&self) -> Result<Channel, String> {
        let mut ch = self.admin.lock().await;
        if !ch.status().connected() {
            *ch = self.conn.create_channel().await.map_err(|e| e.to_string())?;
        }
        Ok(ch.clone())
    }

    /// The confirm-mode channel jobs are published on.
    pub async fn publisher(&self) -> Result<Channel, String> {
        self.lazy(&self.publish, true).await
    }

    /// The channel control words and answers are published on.
    pub async fn replies(&self) -> Result<Channel, String> {
        self.lazy(&self.replies, false).await
    }

    /// The channel in `slot`, opened (again) when it is not open.
    async fn lazy(&self, slot: &tokio::sync::Mutex<Option<Channel>>, confirm: bool) -> Result<Channel, String> {
        let mut ch = slot.lock().await;
        if let Some(c) = ch.as_ref().filter(|c| c.status().connected()) {
            return Ok(c.clone());
        }
        let c = self.conn.create_channel().await.map_err(|e| e.to_string())?;
        if confirm {
            c.confirm_select(lapin::options::ConfirmSelectOptions::default()).await.map_err(|e| e.to_string())?;
        }
        *ch = Some(c.clone());
        Ok(c)
    }
}

/// The URL as lapin takes it (the `url` crate has parsed and checked it already): the virtual
/// host from the path (`/` for none), the credentials percent-decoded.
fn uri(spec: &BrokerSpec) -> Result<AMQPUri, BrokerError> {
    let u = &spec.parsed;
    let bad = |reason: String| BrokerError::BadUrl { url: spec.shown(), reason };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| bad("its user, password or virtual host is not UTF-8".into()))
    };
    let path = u.path().strip_prefix('/').unwrap_or(u.path());
    let vhost = if path.is_empty() { "/".to_string() } else { decode(path)? };
    let default = AMQPUri::default();
    Ok(AMQPUri {
        scheme: if u.scheme() == "amqps" { AMQPScheme::AMQPS } else { AMQPScheme::AMQP },
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo {
                username: if u.username().is_empty() {
                    default.authority.userinfo.username
                } else {
                    decode(u.username())?
                },
                password: u.password().map_or(Ok(default.authority.userinfo.password), decode)?,
            },
            host: u.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string(),
            port: u.port().unwrap_or(5672),
        },
        vhost,
        query: AMQPQueryString {
            heartbeat: Some(u16::try_from(HEARTBEAT.as_secs()).unwrap_or(5)),
            connection_timeout: Some(u64::try_from(CONNECT_TIMEOUT.as_millis()).unwrap_or(3000)),
            ..AMQPQueryString::default()
        },
    })
}

/// TLS from `--broker-ca`, `--broker-cert` and `--broker-key` (only with `amqps://`).
fn tls(spec: &BrokerSpec) -> Result<OwnedTLSConfig, BrokerError> {
    let sec = &spec.security;
    let option =
        |flag: &'static str, reason: &str| BrokerError::BadOption { flag, url: spec.shown(), reason: reason.into() };
    if sec.creds.is_some() {
        return Err(option(
            "--broker-creds",
            "a credentials file is for NATS; give RabbitMQ's user and password in the URL",
        ));
    }
    let secure = spec.parsed.scheme() == "amqps";
    for (flag, given) in [("--broker-ca", sec.ca.is_some()), ("--broker-cert", sec.cert.is_some())] {
        if given && !secure {
            return Err(option(flag, "TLS needs an amqps:// URL"));
        }
    }
    if sec.cert.is_some() != sec.key.is_some() {
        return Err(option("--broker-cert", "a client certificate needs its key (--broker-cert and --broker-key)"));
    }
    let read = |flag: &'static str, path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|e| BrokerError::BadFile { flag, path: path.clone(), reason: e.to_string() })
    };
    let cert_chain = match &sec.ca {
        Some(ca) => Some(String::from_utf8(read("--broker-ca", ca)?).map_err(|_| BrokerError::BadFile {
            flag: "--broker-ca",
            path: ca.clone(),
            reason: "not a PEM file".into(),
        })?),
        None => None,
    };
    let identity = match (&sec.cert, &sec.key) {
        (Some(cert), Some(key)) => {
            Some(OwnedIdentity::PKCS8 { pem: read("--broker-cert", cert)?, key: read("--broker-key", key)? })
        }
        _ => None,
    };
    Ok(OwnedTLSConfig { identity, cert_chain })
}

/// One connection attempt and its session.
async fn open(uri: &AMQPUri, tls: &OwnedTLSConfig, epoch: u64) -> Result<Session, lapin::Error> {
    let props = ConnectionProperties::default().with_connection_name("pooltune".into());
    let runtime = lapin::runtime::default_runtime()?;
    let conn = tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect_uri_with_config(uri.clone(), props, tls.clone(), runtime),
    )
    .await
    .map_err(|_| lapin::Error::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    let admin = conn.create_channel().await?;
    Ok(Session {
        conn,
        admin: tokio::sync::Mutex::new(admin),
        publish: tokio::sync::Mutex::default(),
        replies: tokio::sync::Mutex::default(),
        epoch,
    })
}

/// Declares the run's control exchange (every process broadcasts or binds there).
pub async fn declare_control(s: &Session, run: &str) -> Result<(), String> {
    let ch = s.admin().await?;
    ch.exchange_declare(
        Topic::Control.name(run).into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Connects (refusals told apart), and starts the supervisor.
pub async fn connect(spec: &BrokerSpec) -> Result<Shared, BrokerError> {
    let uri = uri(spec)?;
    let tls = tls(spec)?;
    let first = open(&uri, &tls, 0).await.map_err(|e| refusal(spec, &e))?;
    declare_control(&first, &spec.run_name).await.map_err(|reason| BrokerError::Setup {
        url: spec.shown(),
        what: format!("exchange {}", Topic::Control.name(&spec.run_name)),
        reason: spec.scrub(&reason),
    })?;
    tracing::info!("connected to the broker at {}", spec.shown());
    let amqp = Arc::new_cyclic(|me: &Weak<Amqp>| Amqp {
        spec: spec.clone(),
        link: Arc::new(Link::default()),
        session: watch::channel(Some(Arc::new(first))).0,
        declared: Mutex::default(),
        consumer: Arc::default(),
        rpc: tokio::sync::Mutex::new(None),
        qos: AtomicU64::new(0),
        unacked: Mutex::default(),
        nodes: Mutex::default(),
        dropped_seen: AtomicU64::new(0),
        dropped_told: AtomicU64::new(0),
        nacked: AtomicU64::new(0),
        unacked_max: AtomicU64::new(0),
        instance: format!("{:x}-{:x}", std::process::id(), crate::engine::broker::protocol::wall_ns()),
        me: me.clone(),
    });
    tokio::spawn(supervise(Arc::downgrade(&amqp), uri, tls));
    Ok(amqp)
}

/// What a failed first connection says, the URL's secrets scrubbed.
fn refusal(spec: &BrokerSpec, e: &lapin::Error) -> BrokerError {
    let reason = spec.scrub(&e.to_string());
    let refused = matches!(e.kind(), ErrorKind::ProtocolError(p)
        if matches!(p.kind(), lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::ACCESSREFUSED)
            | lapin::protocol::AMQPErrorKind::Hard(lapin::protocol::AMQPHardError::NOTALLOWED)));
    if refused {
        BrokerError::Refused { url: spec.shown(), reason }
    } else {
        BrokerError::Unreachable { url: spec.shown(), reason }
    }
}

/// Watches the connection; when it is lost, records the outage and connects again until it
/// can, then declares what the run needs again and hands the new session to every consumer.
async fn supervise(me: Weak<Amqp>, uri: AMQPUri, tls: OwnedTLSConfig) {
    let mut epoch = 0;
    loop {
        let Some(s) = me.upgrade().and_then(|a| a.session.borrow().clone()) else { return };
        let mut events = s.conn.events_listener();
        loop {
            tokio::select! {
                e = events.next() => {
                    if let Some(lapin::Event::Error(e)) = &e {
                        tracing::debug!("broker connection: {e}");
                    }
                    if e.is_none() { break; }
                }
                () = tokio::time::sleep(WATCH_EVERY) => {}
            }
            if !s.conn.status().connected() {
                break;
            }
            if me.strong_count() == 0 {
                return;
            }
        }
        let Some(a) = me.upgrade() else { return };
        a.link.lost();
        a.session.send_replace(None);
        drop(a);
        let mut tries: u32 = 0;
        let session = loop {
            tries = tries.saturating_add(1);
            tokio::time::sleep(RECONNECT_STEP.saturating_mul(tries).min(RECONNECT_MAX)).await;
            let Some(a) = me.upgrade() else { return };
            epoch += 1;
            match open(&uri, &tls, epoch).await {
                Ok(s) => match super::again(&a, &s).await {
                    Ok(()) => break s,
                    Err(e) => tracing::debug!("reconnected, but could not set the run up again: {e}"),
                },
                Err(e) => tracing::debug!("reconnecting: {}", a.spec.scrub(&e.to_string())),
            }
        };
        let Some(a) = me.upgrade() else { return };
        a.session.send_replace(Some(Arc::new(session)));
        a.link.back();
    }
}
