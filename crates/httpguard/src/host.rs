//! Which `Host` a listener answers. A web page that rebinds its own DNS name
//! to 127.0.0.1 (DNS rebinding) makes the browser send *its* name in
//! `Host` while talking to our socket, and from then on it reads and
//! drives the listener as if it were its own site. The defence is to answer
//! only names that are ours: loopback names and addresses, the address the
//! listener is bound to, and the names its user configured. An IP address
//! in `Host` cannot be rebound (a page at `http://10.0.0.5` talks to
//! 10.0.0.5), so a listener on the unspecified address (`0.0.0.0`, every
//! address of the machine) answers any address literal, and the probes of
//! a kubelet, which send the pod's address, keep working.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::GuardError;

/// A host as it appears in `Host`, `Origin` or a URI: a lowercase name
/// without its trailing dot, or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostName {
    Ip(IpAddr),
    Name(String),
}

/// A parsed `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    pub(crate) host: HostName,
    pub(crate) port: Option<u16>,
}

/// Longest `Host` value considered (a name is at most 253 bytes).
const MAX_AUTHORITY: usize = 300;

/// Parses `host[:port]` as sent in `Host` (IPv6 in brackets); `None` for
/// anything else, including user info, paths and non-ASCII bytes.
pub(crate) fn parse_authority(raw: &[u8]) -> Option<Authority> {
    if raw.is_empty() || raw.len() > MAX_AUTHORITY || !raw.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        return Some(Authority {
            host: HostName::Ip(IpAddr::V6(ip)),
            port: parse_port(after)?,
        });
    }
    let (host, port) = match text.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, port_digits(port)?),
        // Several colons: a bare IPv6 address (not valid in `Host`, but
        // unambiguous).
        Some(_) => {
            let ip: Ipv6Addr = text.parse().ok()?;
            return Some(Authority {
                host: HostName::Ip(IpAddr::V6(ip)),
                port: None,
            });
        }
        None => (text, None),
    };
    Some(Authority {
        host: parse_host(host)?,
        port,
    })
}

/// What follows a bracketed address: nothing, or `:port`. The outer
/// `None` means malformed.
fn parse_port(after: &str) -> Option<Option<u16>> {
    if after.is_empty() {
        return Some(None);
    }
    port_digits(after.strip_prefix(':')?)
}

/// A port's digits; empty (as URIs allow) is no port.
fn port_digits(digits: &str) -> Option<Option<u16>> {
    if digits.is_empty() {
        Some(None)
    } else if digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok().map(Some)
    } else {
        None
    }
}

/// An IPv4 address in dotted-quad form, or a DNS name.
fn parse_host(host: &str) -> Option<HostName> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Some(HostName::Ip(IpAddr::V4(ip)));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    valid_name(&name).then_some(HostName::Name(name))
}

/// Labels of letters, digits, `-` and `_`, 1 to 63 bytes each, not
/// starting or ending with `-`; 253 bytes in all.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A configured name: exact, or (written with a leading dot) a domain and
/// every name under it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(String),
    Domain(String),
}

impl NamePattern {
    fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => name == exact,
            NamePattern::Domain(domain) => {
                name == domain
                    || name
                        .strip_suffix(domain.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
        }
    }
}

/// The names and addresses a listener answers in `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// Any `Host` at all (a listener on a non-loopback address with no
    /// configured names, as a container behind an ingress must be; or `*`).
    any: bool,
    /// Any IP address literal (bound to the unspecified address).
    any_ip: bool,
    /// Addresses besides loopback: the bound one, configured ones.
    ips: Vec<IpAddr>,
    names: Vec<NamePattern>,
}

impl AllowedHosts {
    /// Loopback names and addresses only: `localhost` (and names under
    /// it), 127.0.0.0/8 and `::1`.
    pub fn loopback() -> Self {
        AllowedHosts {
            any: false,
            any_ip: false,
            ips: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Every `Host`: no protection against DNS rebinding.
    pub fn any() -> Self {
        AllowedHosts {
            any: true,
            ..Self::loopback()
        }
    }

    /// What a listener bound to `bound` answers, given its configured names
    /// (entries of [`parse_allowed_hosts`]: `name`, `.domain`, an address,
    /// or `*`): loopback, the bound address, the configured names. Bound to
    /// a non-loopback address with no names configured, any `Host`.
    pub fn for_listener(bound: IpAddr, configured: &[String]) -> Result<Self, GuardError> {
        let mut allowed = Self::loopback();
        for entry in configured {
            match parse_entry(entry)? {
                Entry::Any => allowed.any = true,
                Entry::Ip(ip) => allowed.ips.push(ip),
                Entry::Name(pattern) => allowed.names.push(pattern),
            }
        }
        if configured.is_empty() && !is_loopback(bound) {
            allowed.any = true;
        }
        if bound.is_unspecified() {
            allowed.any_ip = true;
        } else if !is_loopback(bound) {
            allowed.ips.push(bound);
        }
        Ok(allowed)
    }

    /// Whether every `Host` is answered.
    pub fn accepts_any(&self) -> bool {
        self.any
    }

    pub(crate) fn allows(&self, host: &HostName) -> bool {
        if self.any {
            return true;
        }
        match host {
            HostName::Ip(ip) => is_loopback(*ip) || self.any_ip || self.ips.contains(ip),
            HostName::Name(name) => {
                name == "localhost"
                    || name.ends_with(".localhost")
                    || self.names.iter().any(|p| p.matches(name))
            }
        }
    }
}

/// Loopback, also as an IPv4-mapped IPv6 address.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether `host` — a `Host` header's value, `host[:port]` — is one the
/// listener answers. Anything unparsable is refused unless any host is.
pub fn host_allowed(host: &[u8], allowed: &AllowedHosts) -> bool {
    allowed.any || parse_authority(host).is_some_and(|a| allowed.allows(&a.host))
}

enum Entry {
    Any,
    Ip(IpAddr),
    Name(NamePattern),
}

fn parse_entry(entry: &str) -> Result<Entry, GuardError> {
    let bad = |reason: &str| GuardError::BadName {
        entry: crate::shown(entry.as_bytes()),
        reason: reason.to_string(),
    };
    let entry = entry.trim();
    if entry == "*" {
        return Ok(Entry::Any);
    }
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Entry::Ip(ip));
    }
    let (domain, name) = match entry.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    if name.contains(':') {
        return Err(bad("write the name without a port (any port is answered)"));
    }
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if !valid_name(&name) {
        return Err(bad(
            "expected a DNS name (letters, digits, '-', '.'), '.domain' for a domain and its subdomains, an IP address, or '*'",
        ));
    }
    Ok(Entry::Name(if domain {
        NamePattern::Domain(name)
    } else {
        NamePattern::Exact(name)
    }))
}

/// Splits a comma-separated list of allowed hosts (`ALLOWED_HOSTS`),
/// checking every entry; empty entries are skipped.
pub fn parse_allowed_hosts(list: &str) -> Result<Vec<String>, GuardError> {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| parse_entry(e).map(|_| e.to_string()))
        .collect()
}
