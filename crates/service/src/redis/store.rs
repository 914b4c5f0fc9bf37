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

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

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
    credential: Mutex<Option<Credential>>,
    live: RwLock<Option<Live>>,
    connect_lock: tokio::sync::Mutex<ConnectState>,
    in_flight: Semaphore,
    next_id: AtomicU64,
    last_reset: Mutex<Option<String>>,
    metrics: ServiceMetrics,
    #[cfg(feature = "entra-id")]
    entra: Option<std::sync::Arc<redis::EntraIdCredentialsProvider>>,
}

impl RedisStore {
    pub fn new(config: RedisConfig, metrics: ServiceMetrics) -> Result<Self, StoreError> {
        let source = CredentialSource::new(config.username.clone(), &config.auth);
        #[cfg(feature = "entra-id")]
        let entra = match &config.auth {
            crate::config::RedisAuth::EntraId { client_id } => {
                Some(std::sync::Arc::new(entra_provider(client_id.as_deref())?))
            }
            _ => None,
        };
        Ok(RedisStore {
            in_flight: Semaphore::new(config.max_in_flight),
            config,
            source,
            credential: Mutex::new(None),
            live: RwLock::new(None),
            connect_lock: tokio::sync::Mutex::new(ConnectState::default()),
            next_id: AtomicU64::new(1),
            last_reset: Mutex::new(None),
            metrics,
            #[cfg(feature = "entra-id")]
            entra,
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
        let span = tracing::info_span!(
            "redis",
            otel.name = format!("redis {operation}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system = "redis",
            db.operation.name = operation,
            redis.operation = operation,
            server.address = %self.config.host,
            server.port = i64::from(self.config.port),
        );
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
        self.live
            .read()
            .ok()
            .and_then(|l| l.as_ref().map(|l| (l.id, l.conn.clone())))
    }

    fn drop_connection(&self, id: u64) {
        if let Ok(mut live) = self.live.write()
            && live.as_ref().is_some_and(|l| l.id == id)
        {
            *live = None;
        }
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

    async fn credential(&self) -> Result<Credential, StoreError> {
        if let Some(c) = self.credential.lock().ok().and_then(|c| c.clone()) {
            return Ok(c);
        }
        let fresh = self.source.fetch().await?;
        if let Ok(mut c) = self.credential.lock() {
            *c = Some(fresh.clone());
        }
        Ok(fresh)
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
            #[cfg(feature = "entra-id")]
            let config = match &self.entra {
                Some(provider) => config.set_credentials_provider((**provider).clone()),
                None => config,
            };
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

#[cfg(feature = "entra-id")]
fn entra_provider(
    client_id: Option<&str>,
) -> Result<redis::EntraIdCredentialsProvider, StoreError> {
    let mut provider = match client_id {
        // azure_identity reads AZURE_CLIENT_ID to pick the user-assigned identity.
        Some(_) => redis::EntraIdCredentialsProvider::new_user_assigned_managed_identity(),
        None => redis::EntraIdCredentialsProvider::new_system_assigned_managed_identity(),
    }
    .map_err(|e| StoreError::Auth(format!("cannot set up Entra ID: {e}")))?;
    provider.start(redis::RetryConfig::default());
    Ok(provider)
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
