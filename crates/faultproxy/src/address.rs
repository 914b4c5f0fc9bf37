//! Checks on the names and addresses a caller hands the fault proxy — through
//! the library or, untrusted, through the Toxiproxy API: names are bounded
//! and printable (they end up in fault lists, events and logs), an upstream
//! is `host:port` or — from the library only — `unix:/absolute/path`
//! ([`Upstream`]), and [`is_local_upstream`] says whether it stays on this
//! machine — the only upstreams a proxy created through the API may have
//! unless the API allows remote ones (SPEC section 13: a local process must
//! not be able to send the lab's traffic elsewhere).

use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Longest proxy or toxic name accepted.
pub const MAX_NAME: usize = 256;
/// Longest upstream or listen address accepted.
pub const MAX_ADDRESS: usize = 1024;

/// A proxy or toxic name: not empty, at most [`MAX_NAME`] bytes, no control
/// characters.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::MissingField(field));
    }
    if name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::InvalidValue(format!(
            "{field} must be at most {MAX_NAME} bytes without control characters: {}",
            shown(name)
        )));
    }
    Ok(())
}

/// How an upstream written `unix:/absolute/path` starts.
pub const UNIX_UPSTREAM_PREFIX: &str = "unix:";
/// Longest Unix socket path accepted (`sun_path` holds 108 bytes with the
/// terminating NUL).
pub const MAX_UNIX_PATH: usize = 107;

/// Where a proxy forwards, parsed from its upstream text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// `host:port` (`[v6]:port`), dialled over TCP.
    Tcp(String),
    /// `unix:/absolute/path`: a Unix stream socket on this machine (the
    /// lab's own Redis in process isolation: cheaper per byte than TCP
    /// loopback).
    Unix(PathBuf),
}

impl Upstream {
    /// Parses an upstream: `host:port` (`[v6]:port`, port 1..65535) or
    /// `unix:` and an absolute path of at most [`MAX_UNIX_PATH`] bytes
    /// without control characters.
    pub(crate) fn parse(upstream: &str) -> Result<Self> {
        if upstream.is_empty() {
            return Err(Error::MissingField("upstream"));
        }
        if upstream.len() > MAX_ADDRESS {
            return Err(Error::InvalidUpstream(shown(upstream)));
        }
        if let Some(path) = upstream.strip_prefix(UNIX_UPSTREAM_PREFIX) {
            let valid = path.starts_with('/')
                && path.len() <= MAX_UNIX_PATH
                && !path.chars().any(char::is_control);
            return if valid {
                Ok(Upstream::Unix(PathBuf::from(path)))
            } else {
                Err(Error::InvalidUpstream(shown(upstream)))
            };
        }
        match split_host_port(upstream) {
            Some(_) => Ok(Upstream::Tcp(upstream.to_owned())),
            None => Err(Error::InvalidUpstream(shown(upstream))),
        }
    }
}

/// An upstream [`Upstream::parse`] accepts.
pub(crate) fn check_upstream(upstream: &str) -> Result<()> {
    Upstream::parse(upstream).map(drop)
}

/// Whether `upstream` (already checked) is a Unix socket path.
pub(crate) fn is_unix_upstream(upstream: &str) -> bool {
    upstream.starts_with(UNIX_UPSTREAM_PREFIX)
}

/// Whether `upstream` (already checked) is on this machine: an address in
/// 127.0.0.0/8, `::1` (or an IPv4-mapped loopback), or `localhost`. Any
/// other name is not: it could resolve anywhere, now or at the next dial.
/// (A `unix:` path is on this machine, but the API refuses it for another
/// reason: see `Error::UnixUpstream`.)
pub fn is_local_upstream(upstream: &str) -> bool {
    let Some((host, _)) = split_host_port(upstream) else {
        return false;
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `host` and `port` of `host:port` or `[v6]:port`; `None` when it is
/// neither (a bare IPv6 address, no port, port 0, blanks in the host).
fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:")?;
        v6.parse::<Ipv6Addr>().ok()?;
        (v6, port)
    } else {
        let (host, port) = text.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    // Digits only (a u16 also parses from `+80`), 1..65535.
    if !valid_host || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some((host, port))
}

/// A caller's text as it may appear in a message: at most 80 characters,
/// quoted and escaped.
pub(crate) fn shown(text: &str) -> String {
    format!("\"{}\"", clipped(text))
}

/// A caller's text as it may appear in a message: at most 80 characters,
/// escaped, unquoted.
pub(crate) fn clipped(text: &str) -> String {
    let mut escaped = text.chars().flat_map(char::escape_debug);
    let mut short: String = escaped.by_ref().take(80).collect();
    if escaped.next().is_some() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_host_and_port() {
        for ok in [
            "127.0.0.1:6379",
            "localhost:1",
            "[::1]:6379",
            "redis.internal:6379",
            "10.0.0.1:65535",
        ] {
            assert!(check_upstream(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "::1:6379",
            "[::1]6379",
            "host:0",
            "host:65536",
            "host:+80",
            ":80",
            "a b:80",
            "[zz]:80",
            "host:80\n",
        ] {
            assert!(check_upstream(bad).is_err(), "{bad:?}");
        }
        assert!(check_upstream(&format!("{}:80", "a".repeat(MAX_ADDRESS))).is_err());
    }

    #[test]
    fn unix_upstreams_are_absolute_short_paths() {
        assert_eq!(
            Upstream::parse("unix:/run/redis/redis.sock").unwrap(),
            Upstream::Unix(PathBuf::from("/run/redis/redis.sock"))
        );
        assert_eq!(
            Upstream::parse("127.0.0.1:6379").unwrap(),
            Upstream::Tcp("127.0.0.1:6379".into())
        );
        let longest = format!("unix:/{}", "s".repeat(MAX_UNIX_PATH - 1));
        assert!(check_upstream(&longest).is_ok());
        for bad in [
            "unix:".to_owned(),
            "unix:redis.sock".to_owned(),
            "unix:./redis.sock".to_owned(),
            "unix:/tmp/a\nb".to_owned(),
            "unix:/tmp/a\u{0}b".to_owned(),
            format!("unix:/{}", "s".repeat(MAX_UNIX_PATH)),
        ] {
            let err = check_upstream(&bad).unwrap_err();
            assert!(matches!(err, Error::InvalidUpstream(_)), "{bad:?}: {err}");
        }
        assert!(is_unix_upstream("unix:/x"));
        assert!(!is_unix_upstream("localhost:6379"));
        assert!(!is_local_upstream("unix:/x"));
    }

    #[test]
    fn only_this_machine_is_local() {
        for local in [
            "127.0.0.1:6379",
            "127.200.1.2:1",
            "[::1]:6379",
            "[::ffff:127.0.0.1]:6379",
            "localhost:6379",
            "LOCALHOST.:6379",
        ] {
            assert!(is_local_upstream(local), "{local}");
        }
        for remote in [
            "10.0.0.1:6379",
            "0.0.0.0:6379",
            "[::]:6379",
            "[2001:db8::1]:6379",
            "example.com:6379",
            "localhost.example.com:6379",
            "127.0.0.1.nip.io:6379",
        ] {
            assert!(!is_local_upstream(remote), "{remote}");
        }
    }

    #[test]
    fn names_are_bounded_and_printable() {
        assert!(check_name("name", "redis_py").is_ok());
        assert!(matches!(
            check_name("name", ""),
            Err(Error::MissingField("name"))
        ));
        assert!(check_name("name", &"n".repeat(MAX_NAME + 1)).is_err());
        assert!(check_name("name", "a\u{1b}[2Jb").is_err());
        let message = check_name("name", &"é".repeat(500))
            .unwrap_err()
            .to_string();
        assert!(message.len() < 400, "{message}");
    }
}
