//! Unit tests of each rule, then property tests feeding the pure functions
//! and the whole check arbitrary header values: no panic, and the rules
//! hold for every generated name, address and port.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn listener(bound: &str, configured: &[&str]) -> AllowedHosts {
    AllowedHosts::for_listener(bound.parse().unwrap(), &names(configured)).unwrap()
}

#[test]
fn loopback_names_and_addresses_are_always_answered() {
    let loopback = AllowedHosts::loopback();
    for host in [
        "localhost",
        "LOCALHOST:8000",
        "localhost.",
        "console.localhost:8090",
        "127.0.0.1",
        "127.0.0.1:8000",
        "127.1.2.3:1",
        "[::1]",
        "[::1]:8000",
        "[::ffff:127.0.0.1]:80",
        "localhost:",
    ] {
        assert!(host_allowed(host.as_bytes(), &loopback), "{host}");
    }
    for host in [
        "evil.example:8000",
        "evil.example",
        "localhost.evil.example",
        "evillocalhost",
        "10.0.0.1",
        "0.0.0.0:8000",
        "[::]:8000",
        "[fe80::1]",
        "127.1",
        "",
        " localhost",
        "localhost:8000:1",
        "localhost:99999",
        "localhost:80a",
        "user@localhost",
        "localhost/x",
        "[::1",
        "::1]",
        "loc\u{e4}lhost",
        "localhost:+80",
    ] {
        assert!(!host_allowed(host.as_bytes(), &loopback), "{host:?}");
    }
}

#[test]
fn a_listener_answers_its_bound_address_and_configured_names() {
    // Loopback, nothing configured: loopback only.
    let hosts = listener("127.0.0.1", &[]);
    assert!(!hosts.accepts_any());
    assert!(!host_allowed(b"evil.example", &hosts));
    // Non-loopback with nothing configured: anything (a container behind
    // an ingress cannot know the names it is reached by).
    for bound in ["0.0.0.0", "::", "192.168.1.5"] {
        let hosts = listener(bound, &[]);
        assert!(hosts.accepts_any(), "{bound}");
        assert!(host_allowed(b"whatever.example", &hosts), "{bound}");
        assert!(host_allowed(b"\xff garbage", &hosts), "{bound}");
    }
    // A specific address with names: loopback, that address, the names.
    let hosts = listener("192.168.1.5", &["app.example", ".apps.example", "10.1.1.1"]);
    for host in [
        "192.168.1.5:8000",
        "app.example",
        "APP.example.:443",
        "apps.example",
        "a.b.apps.example",
        "10.1.1.1",
        "localhost",
        "[::1]",
    ] {
        assert!(host_allowed(host.as_bytes(), &hosts), "{host}");
    }
    for host in [
        "sub.app.example",
        "xapps.example",
        "apps.example.evil",
        "192.168.1.6",
        "evil.example",
    ] {
        assert!(!host_allowed(host.as_bytes(), &hosts), "{host}");
    }
    // The unspecified address stands for every address: any IP literal,
    // but only the configured names.
    let hosts = listener("0.0.0.0", &["app.example"]);
    for host in ["10.244.0.7:8000", "[fd00::7]:8000", "app.example"] {
        assert!(host_allowed(host.as_bytes(), &hosts), "{host}");
    }
    assert!(!host_allowed(b"evil.example", &hosts));
    // `*` answers anything, even on loopback.
    assert!(listener("127.0.0.1", &["*"]).accepts_any());
}

#[test]
fn allowed_host_lists_are_checked() {
    assert_eq!(
        parse_allowed_hosts(" a.example, ,.b.example,10.0.0.1,[::1],*,").unwrap(),
        names(&["a.example", ".b.example", "10.0.0.1", "[::1]", "*"])
    );
    assert_eq!(parse_allowed_hosts("").unwrap(), Vec::<String>::new());
    for bad in [
        "bad/name",
        "a.example:8000",
        "a..example",
        "http://a.example",
        "a b",
        ".",
        "-",
        "\u{e9}.example",
        &"x".repeat(64),
    ] {
        let err = parse_allowed_hosts(bad).unwrap_err();
        let GuardError::BadName { entry, .. } = &err;
        assert!(entry.contains(bad.trim_start_matches('.')), "{bad}: {err}");
    }
    let err = AllowedHosts::for_listener(Ipv4Addr::LOCALHOST.into(), &names(&["bad/name"]));
    assert!(err.is_err());
}

#[test]
fn the_own_origin_is_the_request_host() {
    for (origin, host) in [
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("HTTP://LocalHost:8090", "localhost:8090"),
        ("https://app.example", "app.example"),
        ("https://app.example", "app.example:443"),
        ("http://app.example:80", "app.example"),
        ("http://[::1]:8000", "[::1]:8000"),
        ("https://app.example.", "app.example"),
    ] {
        assert!(
            origin_allowed(origin.as_bytes(), host.as_bytes()),
            "{origin} on {host}"
        );
    }
    for (origin, host) in [
        ("https://evil.example", "127.0.0.1:8000"),
        ("http://127.0.0.1:3000", "127.0.0.1:8000"),
        ("http://localhost:8000", "127.0.0.1:8000"),
        ("http://app.example:8080", "app.example"),
        ("https://app.example", "app.example:80"),
        ("null", "127.0.0.1:8000"),
        ("", "127.0.0.1:8000"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "127.0.0.1:8000"),
        ("http://u@127.0.0.1:8000", "127.0.0.1:8000"),
        ("file://", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000", "not a host"),
        ("chrome-extension://abc", "abc"),
    ] {
        assert!(
            !origin_allowed(origin.as_bytes(), host.as_bytes()),
            "{origin} on {host}"
        );
    }
}

#[test]
fn json_is_application_json_or_a_json_suffix() {
    for ct in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/merge-patch+json",
        " application/json ;",
    ] {
        assert!(is_json(ct.as_bytes()), "{ct}");
    }
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/+json",
        "application/jsonx",
        "",
        "text/plain; x=application/json",
    ] {
        assert!(!is_json(ct.as_bytes()), "{ct}");
    }
    assert!(!is_json(b"\xff\xfe"));
}

fn headers(list: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in list {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn check(method: Method, list: &[(&str, &str)]) -> Result<(), Refusal> {
    Guard::loopback().check(
        &method,
        &Uri::from_static("/chaos/redis-reset"),
        &headers(list),
    )
}

#[test]
fn the_check_refuses_foreign_hosts_sites_and_bodies() {
    let host = ("host", "127.0.0.1:8000");
    // What non-browser clients send passes.
    assert_eq!(check(Method::POST, &[host]), Ok(()));
    assert_eq!(check(Method::POST, &[]), Ok(()));
    assert_eq!(
        check(Method::POST, &[host, ("content-type", "application/json")]),
        Ok(())
    );
    assert_eq!(
        check(Method::DELETE, &[host, ("origin", "http://127.0.0.1:8000")]),
        Ok(())
    );
    // Reads with any Origin or Content-Type pass (no CORS grant lets a
    // page read the answer).
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        assert_eq!(
            check(
                method,
                &[
                    host,
                    ("origin", "https://evil.example"),
                    ("content-type", "text/plain")
                ]
            ),
            Ok(())
        );
    }
    // DNS rebinding: refused whatever the method.
    let refusal = check(Method::GET, &[("host", "evil.example:8000")]).unwrap_err();
    assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
    assert_eq!(refusal.kind(), "forbidden-host");
    assert!(
        refusal.to_string().contains("\"evil.example:8000\""),
        "{refusal}"
    );
    assert!(check(Method::GET, &[host, ("host", "evil.example")]).is_err());
    // Cross-site changes.
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for origin in ["https://evil.example", "null", "http://127.0.0.1:3000"] {
            let refusal = check(method.clone(), &[host, ("origin", origin)]).unwrap_err();
            assert_eq!(refusal.status(), StatusCode::FORBIDDEN, "{method} {origin}");
            assert_eq!(refusal.kind(), "cross-site");
        }
        // Simple-request bodies, even empty.
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let refusal = check(method.clone(), &[host, ("content-type", ct)]).unwrap_err();
            assert_eq!(refusal.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(refusal.kind(), "not-json");
        }
    }
    // An Origin with no Host to compare with is not the listener's own.
    assert!(check(Method::POST, &[("origin", "http://127.0.0.1:8000")]).is_err());
    // Absolute-form targets are checked too.
    let uri = Uri::from_static("http://evil.example/chaos/redis-reset");
    assert!(
        Guard::loopback()
            .check(&Method::GET, &uri, &HeaderMap::new())
            .is_err()
    );
    // The hint names where to configure names.
    let refusal = Guard::loopback()
        .with_hint(", or add the name to ALLOWED_HOSTS")
        .check(
            &Method::GET,
            &Uri::from_static("/"),
            &headers(&[("host", "x.example")]),
        )
        .unwrap_err();
    assert!(refusal.to_string().ends_with("ALLOWED_HOSTS"), "{refusal}");
}

#[tokio::test]
async fn the_layer_answers_refusals_itself() {
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let inner = {
        let reached = reached.clone();
        tower::service_fn(move |_req: Request<()>| {
            reached.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new("inner")) }
        })
    };
    let layer = GuardLayer::new(Guard::loopback(), |refusal: &Refusal| {
        let mut response = Response::new("refused");
        *response.status_mut() = refusal.status();
        response
    });
    let service = layer.layer(inner);
    let request = |host: &str, ct: Option<&str>| {
        let mut builder = Request::post("/x").header("host", host);
        if let Some(ct) = ct {
            builder = builder.header("content-type", ct);
        }
        builder.body(()).unwrap()
    };
    let answer = service
        .clone()
        .oneshot(request("evil.example", None))
        .await
        .unwrap();
    assert_eq!(
        (answer.status(), *answer.body()),
        (StatusCode::FORBIDDEN, "refused")
    );
    let answer = service
        .clone()
        .oneshot(request("localhost", Some("text/plain")))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);
    let answer = service.oneshot(request("localhost", None)).await.unwrap();
    assert_eq!((answer.status(), *answer.body()), (StatusCode::OK, "inner"));
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A DNS name that is not under `localhost`.
fn dns_name() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?){0,3}\\.[a-z]{2,6}"
        .prop_filter("not loopback", |n| {
            n != "localhost" && !n.ends_with(".localhost")
        })
}

/// Any IP address, in `Host` form (IPv6 in brackets).
fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
    ]
}

fn host_form(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes in every header the guard reads: no panic, and
    /// whatever is refused is refused with one of its three statuses and a
    /// bounded message.
    #[test]
    fn arbitrary_headers_never_panic(
        host in proptest::collection::vec(any::<u8>(), 0..300),
        origin in proptest::collection::vec(any::<u8>(), 0..300),
        content_type in proptest::collection::vec(any::<u8>(), 0..300),
        method in "[A-Z]{1,8}",
        bound in ip(),
        configured in proptest::collection::vec("[ -~]{0,20}", 0..4),
    ) {
        let allowed = AllowedHosts::for_listener(bound, &configured).unwrap_or_else(|_| AllowedHosts::loopback());
        let _ = host_allowed(&host, &allowed);
        let _ = origin_allowed(&origin, &host);
        let _ = is_json(&content_type);
        let _ = parse_allowed_hosts(&configured.join(","));
        let mut map = HeaderMap::new();
        for (name, value) in [("host", &host), ("origin", &origin), ("content-type", &content_type)] {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                map.insert(name, value);
            }
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        if let Err(refusal) = Guard::new(allowed).check(&method, &Uri::from_static("/"), &map) {
            prop_assert!(matches!(refusal.status().as_u16(), 403 | 415));
            prop_assert!(refusal.to_string().len() < 1200, "{}", refusal);
        }
    }

    /// Loopback listeners refuse every other name, at any port and case;
    /// configured names are answered however they are written in `Host`.
    #[test]
    fn names_are_answered_only_when_ours(
        name in dns_name(),
        other in dns_name(),
        port in proptest::option::of(any::<u16>()),
        upper in any::<bool>(),
        dot in any::<bool>(),
    ) {
        let written = {
            let mut w = if upper { name.to_ascii_uppercase() } else { name.clone() };
            if dot { w.push('.'); }
            if let Some(port) = port { w.push_str(&format!(":{port}")); }
            w
        };
        prop_assert!(!host_allowed(written.as_bytes(), &AllowedHosts::loopback()));
        let ours = AllowedHosts::for_listener(Ipv4Addr::LOCALHOST.into(), std::slice::from_ref(&name)).unwrap();
        prop_assert!(host_allowed(written.as_bytes(), &ours));
        prop_assert_eq!(host_allowed(other.as_bytes(), &ours), other == name);
        let domain = AllowedHosts::for_listener(Ipv4Addr::LOCALHOST.into(), &[format!(".{name}")]).unwrap();
        let under = format!("x.{written}");
        prop_assert!(host_allowed(under.as_bytes(), &domain));
        prop_assert!(host_allowed(written.as_bytes(), &domain));
        let glued = format!("x{name}");
        prop_assert!(!host_allowed(glued.as_bytes(), &domain));
        prop_assert!(host_allowed(written.as_bytes(), &AllowedHosts::any()));
    }

    /// Addresses: loopback ones always, the bound one, any when bound to
    /// the unspecified address, no other on a loopback listener.
    #[test]
    fn addresses_follow_the_bound_address(
        address in ip(),
        bound in ip(),
        port in proptest::option::of(any::<u16>()),
    ) {
        let mut written = host_form(address);
        if let Some(port) = port { written.push_str(&format!(":{port}")); }
        let on_loopback = AllowedHosts::loopback();
        prop_assert_eq!(host_allowed(written.as_bytes(), &on_loopback), is_loopback(address));
        let named = AllowedHosts::for_listener(bound, &["app.example".to_string()]).unwrap();
        prop_assert_eq!(
            host_allowed(written.as_bytes(), &named),
            is_loopback(address) || bound.is_unspecified() || address == bound
        );
    }

    /// An origin is the listener's own exactly when host and port match.
    #[test]
    fn origins_match_host_and_port(
        name in dns_name(),
        other in dns_name(),
        address in ip(),
        port in 1u16..,
        other_port in 1u16..,
        use_address in any::<bool>(),
        https in any::<bool>(),
    ) {
        let host = if use_address { host_form(address) } else { name.clone() };
        let scheme = if https { "https" } else { "http" };
        let origin = format!("{scheme}://{host}:{port}");
        let same = format!("{host}:{port}");
        prop_assert!(origin_allowed(origin.as_bytes(), same.as_bytes()));
        prop_assert_eq!(
            origin_allowed(origin.as_bytes(), format!("{host}:{other_port}").as_bytes()),
            port == other_port
        );
        prop_assert_eq!(
            origin_allowed(format!("{scheme}://{other}:{port}").as_bytes(), format!("{name}:{port}").as_bytes()),
            other == name
        );
        let default = if https { 443 } else { 80 };
        prop_assert_eq!(
            origin_allowed(origin.as_bytes(), host.as_bytes()),
            port == default
        );
    }

    /// A change from another site is refused whatever else it carries; the
    /// same request from the listener's own origin passes.
    #[test]
    fn changes_from_other_sites_are_refused(
        site in dns_name(),
        port in 1u16..,
        method in prop_oneof![Just(Method::POST), Just(Method::PUT), Just(Method::PATCH), Just(Method::DELETE)],
        json in any::<bool>(),
    ) {
        let own = format!("127.0.0.1:{port}");
        let mut list = vec![("host", own.clone()), ("origin", format!("https://{site}"))];
        if json { list.push(("content-type", "application/json".into())); }
        let borrowed: Vec<(&str, &str)> = list.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refusal = check(method.clone(), &borrowed).unwrap_err();
        prop_assert_eq!(refusal.kind(), "cross-site");
        list[1].1 = format!("http://{own}");
        let borrowed: Vec<(&str, &str)> = list.iter().map(|(k, v)| (*k, v.as_str())).collect();
        prop_assert_eq!(check(method, &borrowed), Ok(()));
    }
}
