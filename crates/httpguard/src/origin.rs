//! Whether a request comes from one of the listener's own pages. Browsers
//! name the page behind every cross-origin request, and every POST, PUT,
//! PATCH or DELETE, in `Origin` (`scheme://host[:port]`, or `null` for
//! sandboxed and local pages); other clients send none. A change is
//! accepted from the listener's own origin — the `Origin` whose host and
//! port are the request's `Host` — and refused from any other, which is
//! how a page on another site, or on another port of this machine, is told
//! apart from the console page the lab serves itself.

use crate::host::{Authority, parse_authority};

/// A parsed `Origin`: its scheme's default port and its authority.
struct Origin {
    default_port: u16,
    authority: Authority,
}

fn parse_origin(raw: &[u8]) -> Option<Origin> {
    let text = std::str::from_utf8(raw).ok()?;
    let (scheme, rest) = text.split_once("://")?;
    // Only web pages are this server's own: another scheme (a browser
    // extension, `file`) never is.
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    Some(Origin {
        default_port,
        authority: parse_authority(rest.as_bytes())?,
    })
}

/// Whether `origin` (an `Origin` header's value) is the listener's own: the
/// same host and port as `host` (the request's `Host`). A `Host` without a
/// port matches an origin on its scheme's default port (a TLS-terminating
/// proxy in front may have dropped it). `null`, anything unparsable, and
/// any other host or port are another site.
pub fn origin_allowed(origin: &[u8], host: &[u8]) -> bool {
    let (Some(origin), Some(host)) = (parse_origin(origin), parse_authority(host)) else {
        return false;
    };
    if origin.authority.host != host.host {
        return false;
    }
    let origin_port = origin.authority.port.unwrap_or(origin.default_port);
    match host.port {
        Some(port) => origin_port == port,
        None => origin_port == origin.default_port,
    }
}
