//! Connections to Redis that fail fast while the server is away and come back by themselves,
//! and the outages they see, recorded in the run's [`Link`].
//!
//! A [`Conn`] is one multiplexed connection (commands pipelined over one socket). When a
//! command finds it broken (an I/O error, a timeout) it is dropped at once, the outage is
//! recorded, and a task connects again, every 100 ms at first and at most every second. Until
//! then every command fails at once ("the broker is away"): none waits to be sent on the next
//! connection, so a publish the core has given up on is never stored behind its back.
//!
//! Several connections (commands, the blocking fetch, the subscriptions) see the same outage.
//! [`Health`] counts it once: a connection made before the last reconnection that reports a loss
//! late is reporting the outage already counted.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisError, RedisResult, ScriptInvocation};

use crate::engine::broker::link::Link;

/// How long connecting may take before the server counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The pause before the first reconnection try, added per try up to [`RECONNECT_MAX`].
const RECONNECT_STEP: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// The run's link, shared by an adapter's connections.
pub struct Health {
    pub link: Arc<Link>,
    /// When the link last came back (or the adapter was made).
    up_since: Mutex<Instant>,
}

impl Health {
    pub fn new() -> Health {
        Health { link: Arc::new(Link::default()), up_since: Mutex::new(Instant::now()) }
    }

    /// A connection made at `made` found the server gone. A connection made before the last
    /// reconnection saw the outage that ended there: not a new one.
    pub fn lost(&self, made: Instant) {
        if made >= *self.up_since.lock().unwrap_or_else(PoisonError::into_inner) {
            self.link.lost();
        }
    }

    /// A connection is up again.
    pub fn back(&self) {
        if self.link.down_for().is_some() {
            *self.up_since.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
            self.link.back();
        }
    }
}

/// Whether `e` means the connection is gone (as opposed to the server refusing a command).
pub fn severs(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_unrecoverable_error()
}

/// The error a command gets while the server is away.
fn away() -> RedisError {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "the broker is away; reconnecting").into()
}

/// One multiplexed connection, made again in the background when it breaks.
pub struct Conn {
    client: redis::Client,
    config: AsyncConnectionConfig,
    /// Each command's longest wait for its answer: past it the connection counts as lost.
    limit: Duration,
    current: Mutex<Option<(MultiplexedConnection, Instant)>>,
    health: Arc<Health>,
}

impl Conn {
    /// Connects once; an error is the caller's to report (nothing is retried).
    pub async fn open(client: redis::Client, health: Arc<Health>, limit: Duration) -> RedisResult<Arc<Conn>> {
        // Answers are waited for here (`limit`), not by the client, so that a blocking read can
        // wait longer on its own connection.
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(Some(CONNECT_TIMEOUT)).set_response_timeout(None);
        let conn = Arc::new(Conn { client, config, limit, current: Mutex::new(None), health });
        let c = conn.connect().await?;
        *conn.lock() = Some((c, Instant::now()));
        Ok(conn)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(MultiplexedConnection, Instant)>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn connect(&self) -> RedisResult<MultiplexedConnection> {
        within(CONNECT_TIMEOUT, self.client.get_multiplexed_async_connection_with_config(&self.config)).await
    }

    /// The live connection, or the "away" error while it is being made again.
    fn get(&self) -> RedisResult<(MultiplexedConnection, Instant)> {
        self.lock().clone().ok_or_else(away)
    }

    /// Sends one command.
    pub async fn query<T: FromRedisValue>(self: &Arc<Self>, cmd: &Cmd) -> RedisResult<T> {
        self.query_within(cmd, Duration::ZERO).await
    }

    /// Sends one command the server may hold for up to `held` (a blocking read) before it answers.
    pub async fn query_within<T: FromRedisValue>(self: &Arc<Self>, cmd: &Cmd, held: Duration) -> RedisResult<T> {
        let (mut c, made) = self.get()?;
        let r = within(self.limit + held, cmd.query_async(&mut c)).await;
        self.check(r, made)
    }

    /// Sends a pipeline; with [`Pipeline::ignore_errors`] its commands' own errors are in the
    /// answer.
    pub async fn pipe<T: FromRedisValue>(self: &Arc<Self>, p: &Pipeline) -> RedisResult<T> {
        let (mut c, made) = self.get()?;
        let r = within(self.limit, p.query_async(&mut c)).await;
        self.check(r, made)
    }

    /// Runs a script (loaded first if the server's cache lacks it).
    pub async fn script<T: FromRedisValue>(self: &Arc<Self>, call: &ScriptInvocation<'_>) -> RedisResult<T> {
        let (mut c, made) = self.get()?;
        let r = within(self.limit, call.invoke_async(&mut c)).await;
        self.check(r, made)
    }

    /// Passes `r` on; a broken connection is dropped and made again.
    fn check<T>(self: &Arc<Self>, r: RedisResult<T>, made: Instant) -> RedisResult<T> {
        if let Err(e) = &r {
            if severs(e) {
                self.broken(made);
            }
        } else {
            // A command answered: the link is up (a no-op unless an outage just ended).
            self.health.back();
        }
        r
    }

    /// The connection made at `made` is broken: dropped (once), and made again in the background.
    fn broken(self: &Arc<Self>, made: Instant) {
        {
            let mut cur = self.lock();
            if cur.as_ref().is_none_or(|(_, m)| *m != made) {
                return;
            }
            *cur = None;
        }
        self.health.lost(made);
        tokio::spawn(reconnect(Arc::downgrade(self)));
    }
}

/// Tries to connect until it succeeds or the adapter is gone.
async fn reconnect(conn: Weak<Conn>) {
    let mut pause = RECONNECT_STEP;
    loop {
        tokio::time::sleep(pause).await;
        let Some(c) = conn.upgrade() else { return };
        match c.connect().await {
            Ok(new) => {
                *c.lock() = Some((new, Instant::now()));
                c.health.back();
                return;
            }
            Err(e) => tracing::debug!("reconnecting to the broker: {e}"),
        }
        pause = (pause + RECONNECT_STEP).min(RECONNECT_MAX);
    }
}

/// `f`'s answer, or a time-out error after `limit`.
async fn within<T>(limit: Duration, f: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {limit:?}")).into())
    })
}
