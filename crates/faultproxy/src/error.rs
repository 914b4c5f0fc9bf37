//! The crate's one error type. Every variant knows the HTTP status the
//! Toxiproxy-compatible API answers with (Toxiproxy's `api.go` keeps the
//! status inside its `ApiError`), so the library and the API report the same
//! failure the same way and the lab can map it to its own CLI errors.

use std::io;

/// Everything the fault proxy can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No proxy by that name (404).
    #[error("proxy not found")]
    ProxyNotFound,
    /// No toxic by that name on that proxy (404).
    #[error("toxic not found")]
    ToxicNotFound,
    /// A proxy by that name exists already (409).
    #[error("proxy already exists")]
    ProxyAlreadyExists,
    /// A toxic by that name exists already on that proxy (409).
    #[error("toxic already exists")]
    ToxicAlreadyExists,
    /// A required field is missing or empty (400).
    #[error("missing required field: {0}")]
    MissingField(&'static str),
    /// The request body is not what the endpoint takes (400).
    #[error("bad request body: {0}")]
    BadRequestBody(String),
    /// The toxic type is not one this proxy knows (400); the message names
    /// the supported ones.
    #[error("invalid toxic type: {0} (supported: {supported})", supported = crate::toxic_names::TOXIC_TYPES.join(", "))]
    InvalidToxicType(String),
    /// The `stream` is neither `upstream`, `downstream` nor `both` (400).
    #[error("stream was invalid, can be either upstream or downstream (or both)")]
    InvalidStream,
    /// A value out of range, e.g. toxicity outside 0..1 (400).
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// The listen address is not a loopback address (400): the lab never
    /// exposes a proxy beyond the machine.
    #[error("listen address must be on loopback: {0}")]
    NotLoopback(String),
    /// The upstream is neither `host:port` nor `unix:/absolute/path` (400).
    #[error("upstream must be host:port (an IPv6 address in brackets) or unix:/absolute/path: {0}")]
    InvalidUpstream(String),
    /// A proxy created or moved through the API may not forward to a Unix
    /// socket (403): the proxy would reach it with the lab's permissions,
    /// which the API's caller need not have.
    #[error(
        "upstream \"{0}\" is a Unix socket: only the lab forwards to Unix sockets (the proxy would reach it with the lab's permissions)"
    )]
    UnixUpstream(String),
    /// A proxy created through the API may forward to loopback only, unless
    /// the API allows remote upstreams (403).
    #[error(
        "upstream \"{0}\" is not on loopback (127.0.0.0/8, ::1, localhost): proxies created through the API may only forward to this machine unless remote upstreams are allowed (chaoslab up --allow-remote-upstream)"
    )]
    RemoteUpstream(String),
    /// The request would change what only the lab may change about one of
    /// its own proxies — where it listens or forwards, or that it exists
    /// (403). Its toxics and `enabled` may change.
    #[error(
        "proxy {proxy} is one of the lab's own proxies: {what} is not allowed through the API (only its toxics and enabled may change)"
    )]
    LabProxy {
        /// The proxy.
        proxy: String,
        /// What was refused, e.g. "changing its upstream".
        what: &'static str,
    },
    /// Binding the proxy's listener failed (500, as Toxiproxy).
    #[error("could not listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// Why the bind failed.
        #[source]
        source: io::Error,
    },
    /// The fault proxy is shutting down (503).
    #[error("fault proxy is shutting down")]
    ShuttingDown,
}

impl Error {
    /// The HTTP status the Toxiproxy-compatible API answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Error::ProxyNotFound | Error::ToxicNotFound => 404,
            Error::ProxyAlreadyExists | Error::ToxicAlreadyExists => 409,
            Error::MissingField(_)
            | Error::BadRequestBody(_)
            | Error::InvalidToxicType(_)
            | Error::InvalidStream
            | Error::InvalidValue(_)
            | Error::NotLoopback(_)
            | Error::InvalidUpstream(_) => 400,
            Error::RemoteUpstream(_) | Error::UnixUpstream(_) | Error::LabProxy { .. } => 403,
            Error::Listen { .. } => 500,
            Error::ShuttingDown => 503,
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
