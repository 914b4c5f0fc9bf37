//! The bounds every chaoslab HTTP server keeps (SPEC section 13, "Bounds"):
//! a client gets so long to send a request head, so long to send the body
//! that follows it, so long to sit idle between requests, and only so many
//! connections are served at once. Without them 50 connections sending a
//! head one byte at a time (slowloris) hold a server forever.
//!
//! One implementation for the four servers (the service, the ingress, the
//! control API and console, the Toxiproxy-compatible API), in three parts:
//!
//! - [`ServerLimits`]: the figures, their defaults ([`ServerLimits::PUBLIC`],
//!   [`ServerLimits::CONTROL`]) and their `SERVER_*` environment variables;
//! - [`HttpServer`] (`serve.rs`): the accept loop — a semaphore caps the
//!   connections (beyond it new ones wait in the listen backlog, and every
//!   connection that is not busy with a request ends within its timeouts,
//!   so the queue always moves), hyper serves each connection through a
//!   [`LimitedIo`] (`io.rs`) that ends it when a head or an idle spell
//!   outlasts its timeout, and each request's body is a [`TimedBody`]
//!   (`body.rs`) that fails once the body timeout has passed since the
//!   head; on shutdown it stops accepting and drains;
//! - [`BodyTimeoutLayer`] (`body.rs`): the answer to a request whose body
//!   timed out, a 408 in the listener's own error body, with
//!   `Connection: close`.
//!
//! A request being served — a long hang, a stream of events — is never
//! cut: the header and idle clocks run only while no request is in flight,
//! and the body clock stops once the body has arrived. What bounds a
//! response is its client: one whose socket stays full for the idle
//! timeout (it stopped reading, or reads next to nothing) is closed, and so
//! is an HTTP/2 client that takes none of a response for as long (it keeps
//! its flow-control window shut, and nothing ever stalls at the socket).

mod body;
mod io;
mod serve;

use std::time::Duration;

pub use body::{BodyDeadline, BodyTimeout, BodyTimeoutLayer, BodyTimeoutService, TimedBody};
pub use io::{InFlight, LimitedIo, ReadFilter, Unfiltered};
pub use serve::{Accepted, HttpServer, PeerAddr};

/// The variable overriding [`ServerLimits::header_timeout`], in seconds.
pub const HEADER_TIMEOUT_VAR: &str = "SERVER_HEADER_TIMEOUT_SECONDS";
/// The variable overriding [`ServerLimits::body_timeout`], in seconds.
pub const BODY_TIMEOUT_VAR: &str = "SERVER_BODY_TIMEOUT_SECONDS";
/// The variable overriding [`ServerLimits::idle_timeout`], in seconds.
pub const IDLE_TIMEOUT_VAR: &str = "SERVER_IDLE_TIMEOUT_SECONDS";
/// The variable overriding [`ServerLimits::max_connections`].
pub const MAX_CONNECTIONS_VAR: &str = "SERVER_MAX_CONNECTIONS";

/// The longest timeout accepted: a day.
const MAX_SECONDS: f64 = 86_400.0;
/// The largest connection cap accepted.
const MAX_CONNECTIONS: usize = 1_000_000;

/// How long a client may take, and how many may be served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// From a connection's start, or from the first byte of a later
    /// request, until the request head is complete.
    pub header_timeout: Duration,
    /// From a request head until the last byte of its body has arrived.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait, with no request in
    /// flight, for the first byte of its next request.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl ServerLimits {
    /// The servers clients at large reach: the service and the ingress.
    /// The idle timeout outlasts the idle pools of the clients that keep
    /// connections (the ingress keeps upstream connections 30 s, reqwest
    /// 90 s), so a server never closes a connection a client is about to
    /// reuse.
    pub const PUBLIC: ServerLimits = ServerLimits {
        header_timeout: Duration::from_secs(20),
        body_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(120),
        max_connections: 1024,
    };

    /// The lab's control API and console and the Toxiproxy-compatible API:
    /// a handful of local clients (the CLI, a browser, Toxiproxy clients).
    pub const CONTROL: ServerLimits = ServerLimits {
        max_connections: 128,
        ..ServerLimits::PUBLIC
    };

    /// These limits with another connection cap.
    pub const fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Checks every figure: each timeout above 0 and at most a day, the cap
    /// 1 to 1,000,000.
    pub fn checked(self) -> Result<Self, LimitsError> {
        for (variable, value) in [
            (HEADER_TIMEOUT_VAR, self.header_timeout),
            (BODY_TIMEOUT_VAR, self.body_timeout),
            (IDLE_TIMEOUT_VAR, self.idle_timeout),
        ] {
            check_seconds(variable, value.as_secs_f64())?;
        }
        check_connections(self.max_connections)?;
        Ok(self)
    }

    /// These limits, each overridden by its `SERVER_*` variable where set.
    pub fn from_env(self) -> Result<Self, LimitsError> {
        self.overridden_by(|name| std::env::var(name).ok())
    }

    /// These limits, each overridden by the value `lookup` gives its
    /// variable's name ([`from_env`](Self::from_env) without the process's
    /// environment).
    pub fn overridden_by(
        self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LimitsError> {
        let mut limits = self;
        for (variable, field) in [
            (HEADER_TIMEOUT_VAR, &mut limits.header_timeout),
            (BODY_TIMEOUT_VAR, &mut limits.body_timeout),
            (IDLE_TIMEOUT_VAR, &mut limits.idle_timeout),
        ] {
            if let Some(text) = lookup(variable) {
                *field = parse_seconds(variable, &text)?;
            }
        }
        if let Some(text) = lookup(MAX_CONNECTIONS_VAR) {
            limits.max_connections = parse_connections(&text)?;
        }
        limits.checked()
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::PUBLIC
    }
}

/// A limit that cannot be used, naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is invalid: {reason}")]
pub struct LimitsError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// A timeout in seconds (fractions allowed) as a [`Duration`]: above 0, at
/// most a day.
pub fn parse_seconds(variable: &'static str, text: &str) -> Result<Duration, LimitsError> {
    let value: f64 = text.trim().parse().map_err(|_| LimitsError {
        variable,
        value: text.to_string(),
        reason: "expected a number of seconds, such as 20 or 0.5".into(),
    })?;
    check_seconds(variable, value).map(Duration::from_secs_f64)
}

fn check_seconds(variable: &'static str, value: f64) -> Result<f64, LimitsError> {
    if value.is_finite() && (0.001..=MAX_SECONDS).contains(&value) {
        Ok(value)
    } else {
        Err(LimitsError {
            variable,
            value: value.to_string(),
            reason: format!("expected seconds from 0.001 to {MAX_SECONDS}"),
        })
    }
}

fn parse_connections(text: &str) -> Result<usize, LimitsError> {
    let value = text.trim().parse::<usize>().map_err(|_| LimitsError {
        variable: MAX_CONNECTIONS_VAR,
        value: text.to_string(),
        reason: format!("expected a whole number from 1 to {MAX_CONNECTIONS}"),
    })?;
    check_connections(value)
}

fn check_connections(value: usize) -> Result<usize, LimitsError> {
    if (1..=MAX_CONNECTIONS).contains(&value) {
        Ok(value)
    } else {
        Err(LimitsError {
            variable: MAX_CONNECTIONS_VAR,
            value: value.to_string(),
            reason: format!("expected a whole number from 1 to {MAX_CONNECTIONS}"),
        })
    }
}

#[cfg(test)]
mod tests;
