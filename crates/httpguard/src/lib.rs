//! What every chaoslab HTTP listener shares (SPEC section 13): the
//! browser-attack guard, here, and the server bounds — header, body and
//! idle timeouts and a connection cap — in [`limits`].
//!
//! The guard ("Browser attacks"). The lab runs next to the developer's
//! browser, and a web page can reach loopback: by rebinding its DNS name to
//! 127.0.0.1 it reads and drives a listener as its own site; without that,
//! it can still send "simple" cross-site requests — a form or `text/plain`
//! POST, an empty POST — that need no CORS preflight. So every listener
//! (the service, the ingress, the control API and console, the
//! Toxiproxy-compatible API) runs the same [`Guard`]:
//!
//! 1. `Host` must be one of the listener's names ([`AllowedHosts`],
//!    [`host_allowed`]), else 403;
//! 2. a request that changes something (any method but GET, HEAD, OPTIONS,
//!    TRACE) carrying an `Origin` must come from the listener's own origin
//!    ([`origin_allowed`]), else 403;
//! 3. such a request with a `Content-Type` must declare JSON ([`is_json`]),
//!    else 415. No `Content-Type` is fine (a bodiless POST from a
//!    non-browser client); the listener then judges the body itself.
//!
//! Nothing here grants CORS: no `Access-Control-Allow-*` header is ever
//! added. Clients that are not browsers (the seed's, Locust, Toxiproxy's,
//! the lab's CLI) send no `Origin`, JSON or no body, and a loopback `Host`,
//! and pass untouched. One mechanism, one small crate: axum listeners use
//! the tower [`GuardLayer`], the hyper-based ingress calls
//! [`Guard::check`].

#![forbid(unsafe_code)]

mod host;
mod layer;
pub mod limits;
mod origin;

use http::{HeaderMap, Method, StatusCode, Uri, header};

pub use host::{AllowedHosts, host_allowed, parse_allowed_hosts};
pub use layer::{GuardLayer, GuardService};
pub use limits::{
    Accepted, BodyDeadline, BodyTimeout, BodyTimeoutLayer, HttpServer, InFlight, LimitedIo,
    LimitsError, PeerAddr, ReadFilter, ServerLimits, TimedBody, Unfiltered,
};
pub use origin::origin_allowed;

/// A configured allowed-host entry that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("{entry} is not a host name: {reason}")]
    BadName { entry: String, reason: String },
}

/// Why a request was refused; its [`status`](Refusal::status) and
/// [`kind`](Refusal::kind) (the ingress's `x-chaoslab-error`), and a
/// message saying what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `Host` is not one of the listener's names (DNS rebinding).
    #[error(
        "Host {host} is not a name of this server, refused as a DNS-rebinding attempt; ask for localhost or 127.0.0.1{hint}"
    )]
    Host { host: String, hint: &'static str },
    /// A change from a page of another site.
    #[error(
        "a {method} from a page of {origin} is refused: this server accepts changes only from its own pages and from clients that are not browsers"
    )]
    CrossSite { method: String, origin: String },
    /// A change whose body is declared as something else than JSON.
    #[error(
        "a {method} with Content-Type {content_type} is refused: send the body as JSON with `Content-Type: application/json`, or send no body and no Content-Type"
    )]
    NotJson {
        method: String,
        content_type: String,
    },
}

impl Refusal {
    /// 403 for a foreign host or site, 415 for a body that is not JSON.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Host { .. } | Refusal::CrossSite { .. } => StatusCode::FORBIDDEN,
            Refusal::NotJson { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// A short, stable name: `forbidden-host`, `cross-site` or `not-json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Host { .. } => "forbidden-host",
            Refusal::CrossSite { .. } => "cross-site",
            Refusal::NotJson { .. } => "not-json",
        }
    }
}

/// The check itself: the listener's allowed hosts, cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: std::sync::Arc<AllowedHosts>,
    hint: &'static str,
}

impl Guard {
    /// A guard answering `hosts` (see [`AllowedHosts::for_listener`]).
    pub fn new(hosts: AllowedHosts) -> Self {
        Guard {
            hosts: std::sync::Arc::new(hosts),
            hint: "",
        }
    }

    /// A guard answering loopback names and addresses only.
    pub fn loopback() -> Self {
        Self::new(AllowedHosts::loopback())
    }

    /// Ends a refused `Host`'s message with where names are configured,
    /// e.g. `", or add the name to ALLOWED_HOSTS"`.
    pub fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    /// Checks a request's head; `Err` says why it must be refused.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_host(uri, headers)?;
        if method.is_safe() {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .map(|h| h.as_bytes())
            .or_else(|| uri.authority().map(|a| a.as_str().as_bytes()));
        for origin in headers.get_all(header::ORIGIN) {
            if !host.is_some_and(|host| origin_allowed(origin.as_bytes(), host)) {
                return Err(Refusal::CrossSite {
                    method: method.to_string(),
                    origin: shown(origin.as_bytes()),
                });
            }
        }
        for content_type in headers.get_all(header::CONTENT_TYPE) {
            if !is_json(content_type.as_bytes()) {
                return Err(Refusal::NotJson {
                    method: method.to_string(),
                    content_type: shown(content_type.as_bytes()),
                });
            }
        }
        Ok(())
    }

    /// Every host the request names — each `Host` header (more than one is
    /// refused) and an absolute-form URI's authority — must be allowed. A
    /// request naming none (HTTP/1.0) comes from no browser and passes.
    fn check_host(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_hosts(headers.get_all(header::HOST).iter().map(|h| h.as_bytes()))?;
        match uri.authority() {
            Some(a)
                if !self.hosts.accepts_any()
                    && !host_allowed(a.as_str().as_bytes(), &self.hosts) =>
            {
                Err(self.refuse_host(a.as_str().as_bytes()))
            }
            _ => Ok(()),
        }
    }

    /// [`check`](Self::check) for a request that changes nothing (GET,
    /// HEAD) and has an origin-form target (`/path`), on the raw values of
    /// its `Host` fields: for a listener that reads request heads itself.
    pub fn check_hosts<'a>(
        &self,
        hosts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), Refusal> {
        if self.hosts.accepts_any() {
            return Ok(());
        }
        let mut named = hosts.into_iter();
        if let Some(host) = named.next() {
            if !host_allowed(host, &self.hosts) {
                return Err(self.refuse_host(host));
            }
            if let Some(second) = named.next() {
                return Err(self.refuse_host(second));
            }
        }
        Ok(())
    }

    fn refuse_host(&self, host: &[u8]) -> Refusal {
        Refusal::Host {
            host: shown(host),
            hint: self.hint,
        }
    }
}

/// Whether a `Content-Type` declares JSON: `application/json` or
/// `application/*+json`, with any parameters.
pub fn is_json(content_type: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(content_type) else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > "+json".len() && sub.ends_with("+json"))
}

/// A header value fit for a message: quoted, escaped, at most 80
/// characters.
pub(crate) fn shown(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let clipped: String = text.chars().take(80).collect();
    let more = if text.chars().count() > 80 { "…" } else { "" };
    format!("{:?}{more}", clipped)
}

#[cfg(test)]
mod tests;
