//! [`RedisStore`]: the one shared connection and the rules around it.
//!
//! - One multiplexed connection carries every concurrent operation;
//!   REDIS_MAX_CONNECTIONS bounds how many are in flight at once.
//! - Connecting is single-flight: when Redis is unreachable, the requests
//!   that queued behind a failing attempt share its failure instead of each
//!   waiting out another connect timeout.
//! - A failure that may have reached Redis is retried only for idempotent
//!   operations, so a counter never counts a request twice.
//! - An auth error fetches the credential again once, reconnects and
//!   retries once; a second one is final.
//! - A credential that expires (an Entra ID token) is renewed before it
//!   does: a background task fetches the next one and sends AUTH on the live
//!   connection (or drops it when Redis refuses, so the next operation
//!   reconnects); a connection made after the renewal time fetches first.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::error::{Failure, classify};
use super::{Credential, CredentialSource, StoreError};
use crate::config::RedisConfig;
use crate::metrics::ServiceMetrics;

/// Whether an operation may be repeated after a failure that might have
/// reached Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Reads and overwrites: safe to repeat.
    Idempotent,
    /// INCR and friends: repeated only when surely not sent.
    NonIdempotent,
    /// Health checks: one attempt, no backoff (the caller has a deadline).
    NoRetry,
}

struct Live {
    id: u64,
    conn: MultiplexedConnection,
}

#[derive(Default)]
struct ConnectState {
    /// When the last connection attempt failed and why, shared with the
    /// requests that were waiting for it.
    last_failure: Option<(Instant, StoreError)>,
}

/// The service's handle to Redis.
pub struct RedisStore {
    config: RedisConfig,
    source: CredentialSource,
    credential: Arc<Mutex<Option<Credential>>>,
    live: Arc<RwLock<Option<Live>>>,
    /// Renews an expiring credential; started with the first connection
    /// made with one, ended when the store goes.
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    connect_lock: tokio::sync::Mutex<ConnectState>,
    in_flight: Semaphore,
    next_id: AtomicU64,
    last_reset: Mutex<Option<String>>,
    metrics: ServiceMetrics,
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.get_mut().ok().and_then(|r| r.take()) {
            renewer.abort();
        }
    }
}

impl RedisStore {
    pub fn new(config: RedisConfig, metrics: ServiceMetrics) -> Result<Self, StoreError> {
        let source = CredentialSource::new(config.username.clone(), &config.auth)?;
        Ok(RedisStore {
            in_flight: Semaphore::new(config.max_in_flight),
            config,
            source,
            credential: Arc::new(Mutex::new(None)),
            live: Arc::new(RwLock::new(None)),
            renewer: Mutex::new(None),
            connect_lock: tokio::sync::Mutex::new(ConnectState::default()),
            next_id: AtomicU64::new(1),
            last_reset: Mutex::new(None),
            metrics,
        })
    }

    /// Open connections (0 or 1: one multiplexed connection carries all).
    pub fn connection_count(&self) -> usize {
        usize::from(self.live.read().map(|l| l.is_some()).unwrap_or(false))
    }

    /// When the connections were last reset by the chaos API.
    pub fn last_reset(&self) -> Option<String> {
        self.last_reset.lock().ok().and_then(|l| l.clone())
    }

    /// Closes every connection; the next operation reconnects. Returns how
    /// many were closed.
    pub fn reset(&self) -> usize {
        let closed = self.live.write().map(|mut l| l.take()).ok().flatten();
        if let Ok(mut last) = self.last_reset.lock() {
            *last = Some(crate::error::now_rfc3339());
        }
        usize::from(closed.is_some())
    }

    /// Runs `f` on a connection, with the retry rules above. `operation`
    /// names the span and the latency metric's `redis.operation`.
    pub async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        kind: OpKind,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let span = if !crate::trace_export() {
            // Nothing exports spans: the span only names the log lines
            // written meanwhile; nine attributes per call would be
            // formatted for nobody (the largest cost left on `/`).
            tracing::info_span!("redis")
        } else {
            tracing::info_span!(
                "redis",
                otel.name = format!("redis {operation}"),
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                db.system = "redis",
                db.operation.name = operation,
                redis.operation = operation,
                // The seed's attribute name for the server (SPEC §5 / seed tracing diagram).
                redis.host = %self.config.host,
                server.address = %self.config.host,
                server.port = i64::from(self.config.port),
            )
        };
        let started = Instant::now();
        let result = self
            .run_with_retries(kind, f)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                record_failure(&span, e);
                "error"
            }
        };
        self.metrics
            .record_redis_op(operation, outcome, started.elapsed().as_secs_f64() * 1000.0);
        result
    }

    async fn run_with_retries<T, F, Fut>(&self, kind: OpKind, f: F) -> Result<T, StoreError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let _permit = tokio::time::timeout(self.config.socket_timeout, self.in_flight.acquire())
            .await
            .map_err(|_| StoreError::Timeout("too many Redis operations in flight".into()))?
            .map_err(|_| StoreError::Connection("the Redis client is closed".into()))?;
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            let failure = match self.connection().await {
                Ok((id, conn)) => match f(conn).await {
                    Ok(value) => return Ok(value),
                    Err(err) => {
                        let failure = Failure::from_command(&err);
                        if failure.breaks_connection() {
                            self.drop_connection(id);
                        }
                        failure
                    }
                },
                Err(failure) => failure,
            };
            if failure.is_auth() && !refreshed {
                refreshed = true;
                tracing::warn!(error = %failure.error, "Redis rejected the credential; fetching it again and retrying once");
                self.refresh_credential().await;
                continue;
            }
            let may_retry = kind != OpKind::NoRetry
                && attempt < self.config.max_retries
                && failure.retryable(kind == OpKind::Idempotent);
            if !may_retry {
                if failure.is_auth() {
                    tracing::error!(error = %failure.error, "Redis authentication failed after one credential refresh");
                }
                return Err(failure.error);
            }
            let delay = backoff(self.config.backoff_base, self.config.backoff_cap, attempt);
            tracing::info!(error = %failure.error, retry_in_ms = delay.as_millis() as u64, "retrying Redis operation");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        current_of(&self.live)
    }

    fn drop_connection(&self, id: u64) {
        drop_connection_of(&self.live, id);
    }

    /// The shared connection, connecting first when there is none.
    async fn connection(&self) -> Result<(u64, MultiplexedConnection), Failure> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        let waiting_since = Instant::now();
        let mut state = self.connect_lock.lock().await;
        if let Some(live) = self.current() {
            return Ok(live);
        }
        if let Some((at, err)) = &state.last_failure
            && *at >= waiting_since
        {
            return Err(Failure::before_send(err.clone()));
        }
        match self.connect().await {
            Ok(conn) => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut live) = self.live.write() {
                    *live = Some(Live {
                        id,
                        conn: conn.clone(),
                    });
                }
                state.last_failure = None;
                self.metrics.redis_connection_success.add(1, &[]);
                self.start_renewer_if_needed();
                Ok((id, conn))
            }
            Err(err) => {
                self.metrics.redis_connection_failure.add(1, &[]);
                tracing::warn!(error = %err, "cannot connect to Redis");
                state.last_failure = Some((Instant::now(), err.clone()));
                Err(Failure::before_send(err))
            }
        }
    }

    /// The cached credential, or a fresh one when there is none or it is
    /// due for renewal. Fetching is bounded by the connect timeout.
    async fn credential(&self) -> Result<Credential, StoreError> {
        if let Some(c) = self.credential.lock().ok().and_then(|c| c.clone())
            && !c.is_due(SystemTime::now())
        {
            return Ok(c);
        }
        let fresh = tokio::time::timeout(self.config.connect_timeout, self.source.fetch())
            .await
            .map_err(|_| {
                StoreError::Auth(format!(
                    "no {} credential within {:?}",
                    self.source.method(),
                    self.config.connect_timeout
                ))
            })??;
        if let Ok(mut c) = self.credential.lock() {
            *c = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// Starts the task renewing an expiring credential, once.
    fn start_renewer_if_needed(&self) {
        let expiring = self
            .credential
            .lock()
            .ok()
            .is_some_and(|c| c.as_ref().is_some_and(|c| c.expires_at.is_some()));
        if !expiring {
            return;
        }
        let Ok(mut renewer) = self.renewer.lock() else {
            return;
        };
        if renewer.is_none() {
            *renewer = Some(tokio::spawn(renew_credential(
                self.source.clone(),
                Arc::downgrade(&self.credential),
                Arc::downgrade(&self.live),
                self.config.socket_timeout,
            )));
        }
    }

    /// Forgets the cached credential and the connection made with it.
    async fn refresh_credential(&self) {
        if let Ok(mut c) = self.credential.lock() {
            *c = None;
        }
        if let Ok(mut live) = self.live.write() {
            *live = None;
        }
        // Let the next attempt connect at once instead of sharing a failure.
        self.connect_lock.lock().await.last_failure = None;
    }

    async fn connect(&self) -> Result<MultiplexedConnection, StoreError> {
        let span = tracing::info_span!("redis connect", otel.kind = "client", db.system = "redis", server.address = %self.config.host, server.port = i64::from(self.config.port));
        async {
            let credential = self.credential().await?;
            let mut info = self
                .config
                .url
                .as_str()
                .into_connection_info()
                .map_err(|e| StoreError::Connection(format!("bad Redis address: {e}")))?;
            let mut settings = info.redis_settings().clone();
            if let Some(user) = &credential.username {
                settings = settings.set_username(user);
            }
            if let Some(password) = &credential.password {
                settings = settings.set_password(password);
            }
            info = info.set_redis_settings(settings);
            let client =
                redis::Client::open(info).map_err(|e| StoreError::Connection(e.to_string()))?;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.config.connect_timeout))
                .set_response_timeout(Some(self.config.socket_timeout));
            // The whole setup (TCP, AUTH, HELLO) gets the connect timeout: a
            // network rule that swallows packets must not hang requests.
            match tokio::time::timeout(
                self.config.connect_timeout,
                client.get_multiplexed_async_connection_with_config(&config),
            )
            .await
            {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(err)) => Err(match classify(&err) {
                    StoreError::Timeout(t) => {
                        StoreError::Connection(format!("connect timed out: {t}"))
                    }
                    other => other,
                }),
                Err(_) => Err(StoreError::Connection(format!(
                    "no connection to {}:{} within {:?}",
                    self.config.host, self.config.port, self.config.connect_timeout
                ))),
            }
        }
        .instrument(span)
        .await
    }
}

fn record_failure(span: &tracing::Span, err: &StoreError) {
    chaoslab_telemetry::record_error(span, err);
    let _entered = span.enter();
    tracing::error!(error = %err, "Redis operation failed");
}

/// Exponential backoff: base × 2^attempt, at most cap.
pub(crate) fn backoff(base: Duration, cap: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt)).min(cap)
}

fn current_of(live: &RwLock<Option<Live>>) -> Option<(u64, MultiplexedConnection)> {
    live.read()
        .ok()
        .and_then(|l| l.as_ref().map(|l| (l.id, l.conn.clone())))
}

fn drop_connection_of(live: &RwLock<Option<Live>>, id: u64) {
    if let Ok(mut live) = live.write()
        && live.as_ref().is_some_and(|l| l.id == id)
    {
        *live = None;
    }
}

/// Never renews more often than this, whatever the token's lifetime (a
/// token that comes back already due must not spin the loop).
const MIN_RENEW_INTERVAL: Duration = Duration::from_millis(500);
/// After a failed fetch, tries again this often while the old one lasts.
const RENEW_RETRY: Duration = Duration::from_secs(1);

/// Renews the cached credential before it expires and authenticates the
/// live connection with the new one (AUTH user token), until the store
/// is dropped. A connection Redis refuses the new token on is dropped: the
/// next operation reconnects, and its auth error takes the one-refresh path.
async fn renew_credential(
    source: CredentialSource,
    credential: Weak<Mutex<Option<Credential>>>,
    live: Weak<RwLock<Option<Live>>>,
    auth_timeout: Duration,
) {
    let mut wait = MIN_RENEW_INTERVAL;
    loop {
        tokio::time::sleep(wait.max(MIN_RENEW_INTERVAL)).await;
        let Some(cached) = credential.upgrade() else {
            return;
        };
        let due_at = cached
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(Credential::refresh_at));
        drop(cached);
        let Some(due_at) = due_at else {
            // Nothing cached (an auth error cleared it): the next connection
            // fetches one; look again shortly.
            wait = RENEW_RETRY;
            continue;
        };
        if let Ok(until) = due_at.duration_since(SystemTime::now())
            && !until.is_zero()
        {
            wait = until;
            continue;
        }
        let span = tracing::info_span!("redis credential renewal", auth.method = source.method());
        // Bounded as every other fetch: a stalled identity endpoint must
        // not stop renewals for good.
        let fetch = tokio::time::timeout(auth_timeout, source.fetch());
        let fresh = match fetch.instrument(span.clone()).await {
            Ok(Ok(fresh)) => fresh,
            Ok(Err(err)) => {
                let _entered = span.enter();
                tracing::warn!(error = %err, "cannot renew the Redis credential; keeping the current one and trying again");
                wait = RENEW_RETRY;
                continue;
            }
            Err(_) => {
                let _entered = span.enter();
                tracing::warn!(timeout = ?auth_timeout, "the Redis credential source did not answer in time; keeping the current one and trying again");
                wait = RENEW_RETRY;
                continue;
            }
        };
        let Some(cached) = credential.upgrade() else {
            return;
        };
        if let Ok(mut c) = cached.lock() {
            *c = Some(fresh.clone());
        }
        drop(cached);
        let Some(live) = live.upgrade() else {
            return;
        };
        reauthenticate(&live, &fresh, auth_timeout, &span).await;
        wait = MIN_RENEW_INTERVAL;
    }
}

/// AUTH on the live connection with the renewed credential; a connection
/// that refuses it or does not answer within `auth_timeout` is dropped.
async fn reauthenticate(
    live: &RwLock<Option<Live>>,
    fresh: &Credential,
    auth_timeout: Duration,
    span: &tracing::Span,
) {
    let Some((id, mut conn)) = current_of(live) else {
        return;
    };
    let mut auth = redis::cmd("AUTH");
    if let Some(user) = &fresh.username {
        auth.arg(user);
    }
    auth.arg(fresh.password.as_deref().unwrap_or_default());
    let answer = tokio::time::timeout(auth_timeout, auth.query_async::<()>(&mut conn))
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    match answer {
        Ok(Ok(())) => {
            tracing::info!("authenticated the Redis connection again with the renewed credential");
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "Redis refused the renewed credential; dropping the connection");
            drop_connection_of(live, id);
        }
        Err(_) => {
            tracing::warn!(
                "no answer to AUTH with the renewed credential; dropping the connection"
            );
            drop_connection_of(live, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(3), 0), s(1));
        assert_eq!(backoff(s(1), s(3), 1), s(2));
        assert_eq!(backoff(s(1), s(3), 2), s(3));
        assert_eq!(backoff(s(1), s(3), 40), s(3));
    }
}
