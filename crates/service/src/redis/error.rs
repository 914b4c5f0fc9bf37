//! What can go wrong talking to Redis, in the three answers the seed's
//! clients know (`Redis connection failed`, `Redis authentication failed`,
//! `Redis operation timed out`), plus whether retrying is safe.

/// A Redis failure as the service reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No connection could be made or it broke (refused, unreachable, cut
    /// off by a network rule, dropped).
    #[error("Redis connection failed: {0}")]
    Connection(String),
    /// Redis rejected the credential, even after fetching it again.
    #[error("Redis authentication failed: {0}")]
    Auth(String),
    /// No reply within REDIS_SOCKET_TIMEOUT.
    #[error("Redis operation timed out: {0}")]
    Timeout(String),
    /// Redis answered with an error (a bug or a misconfigured server).
    #[error("Redis operation failed: {0}")]
    Operation(String),
}

impl StoreError {
    /// The `detail` of the 503 answer, exactly as the seed's service said it.
    pub fn public_detail(&self) -> &'static str {
        match self {
            StoreError::Connection(_) => "Redis connection failed",
            StoreError::Auth(_) => "Redis authentication failed",
            StoreError::Timeout(_) => "Redis operation timed out",
            StoreError::Operation(_) => "Redis operation failed",
        }
    }
}

/// A failure with what the retry logic needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub error: StoreError,
    /// Whether the command may have reached Redis (then only idempotent
    /// operations are repeated: an INCR must never count twice).
    pub maybe_sent: bool,
}

impl Failure {
    pub fn before_send(error: StoreError) -> Self {
        Failure {
            error,
            maybe_sent: false,
        }
    }

    /// Classifies an error from redis-rs returned by a command.
    pub fn from_command(err: &redis::RedisError) -> Self {
        let error = classify(err);
        Failure {
            error,
            maybe_sent: true,
        }
    }

    pub fn is_auth(&self) -> bool {
        matches!(self.error, StoreError::Auth(_))
    }

    /// Whether the connection this came from must be replaced.
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self.error,
            StoreError::Connection(_) | StoreError::Timeout(_) | StoreError::Auth(_)
        )
    }

    pub fn retryable(&self, idempotent: bool) -> bool {
        match self.error {
            StoreError::Connection(_) | StoreError::Timeout(_) => idempotent || !self.maybe_sent,
            StoreError::Auth(_) | StoreError::Operation(_) => false,
        }
    }
}

/// Maps a redis-rs error to the service's taxonomy.
pub(crate) fn classify(err: &redis::RedisError) -> StoreError {
    let text = err.to_string();
    if err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        StoreError::Auth(text)
    } else if err.is_timeout() {
        StoreError::Timeout(text)
    } else if err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
    {
        StoreError::Connection(text)
    } else {
        StoreError::Operation(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_increments_are_not_retried() {
        let f = Failure {
            error: StoreError::Connection("dropped".into()),
            maybe_sent: true,
        };
        assert!(!f.retryable(false));
        assert!(f.retryable(true));
        assert!(Failure::before_send(StoreError::Connection("x".into())).retryable(false));
    }

    #[test]
    fn auth_is_recognised() {
        let err = redis::RedisError::from((redis::ErrorKind::AuthenticationFailed, "bad"));
        assert!(matches!(classify(&err), StoreError::Auth(_)));
        assert_eq!(
            classify(&err).public_detail(),
            "Redis authentication failed"
        );
    }
}
