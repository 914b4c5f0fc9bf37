//! Layers around every route: the process-hang gate (outermost: a hung
//! process answers nothing) and request observation — X-Request-ID, the
//! server span with HTTP semantic-convention attributes (when spans are
//! exported), and the HTTP duration histogram — in one layer, then the
//! browser-attack guard (SPEC section 13):
//! a foreign `Host`, a change from another site or a body that is not JSON
//! is refused in the standard error body, observed like any answer.
//!
//! The observation is a hand-written tower layer rather than an axum
//! `from_fn` one: that clones the service under it, boxes two futures and
//! moves them around on every request, a measurable share of the cost of
//! a request that does little else (`GET /chaos/status`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, Method};
use opentelemetry::{KeyValue, Value};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use crate::config::Config;
use crate::error::ApiError;
use crate::request_id;
use crate::state::AppState;

/// The guard's answer: the standard error body with the refusal's status.
pub type Refuse = fn(&chaoslab_httpguard::Refusal) -> Response;

/// The browser-attack guard for this configuration: loopback, the listen
/// address and ALLOWED_HOSTS are answered (any host on a non-loopback
/// address with no ALLOWED_HOSTS).
pub fn guard(config: &Config) -> chaoslab_httpguard::GuardLayer<Refuse> {
    use chaoslab_httpguard::{AllowedHosts, Guard, GuardLayer};
    // The list was checked with the rest of the configuration; should it
    // not parse after all, answer loopback only rather than anyone.
    let hosts = AllowedHosts::for_listener(config.listen.ip(), &config.allowed_hosts)
        .unwrap_or_else(|_| AllowedHosts::loopback());
    let guard = Guard::new(hosts).with_hint(", or add the name to ALLOWED_HOSTS");
    GuardLayer::new(guard, |refusal| {
        use axum::response::IntoResponse;
        ApiError::new(refusal.status(), refusal.to_string()).into_response()
    })
}

/// Every request, outermost: held while a process-scope hang is active
/// (except the `DELETE /chaos/hang` that ends it), then observed — request
/// id, server span, duration metric. One layer rather than one per concern.
#[derive(Clone)]
pub struct AroundEveryRequest {
    state: AppState,
}

impl AroundEveryRequest {
    pub fn new(state: AppState) -> Self {
        AroundEveryRequest { state }
    }
}

impl<S> Layer<S> for AroundEveryRequest {
    type Service = AroundService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AroundService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service [`AroundEveryRequest`] makes.
#[derive(Clone)]
pub struct AroundService<S> {
    inner: S,
    state: AppState,
}

/// A request waiting for a process-scope hang to end (rare: boxed).
type Held = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for AroundService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AroundFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let hung = self.state.hang().is_process_hung()
            && !(req.method() == Method::DELETE && req.uri().path() == "/chaos/hang");
        if !hung {
            return AroundFuture::Observed {
                observed: observe(&self.state, req, &mut self.inner),
            };
        }
        let state = self.state.clone();
        let inner = self.inner.clone();
        AroundFuture::Held {
            held: Box::pin(async move {
                state.hang().wait_while_process_hung().await;
                let mut inner = inner;
                let ready = inner.ready().await?;
                observe(&state, req, ready).await
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`AroundService`].
    #[project = AroundProjection]
    pub enum AroundFuture<F> {
        Observed { #[pin] observed: Observed<F> },
        Held { held: Held },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for AroundFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AroundProjection::Observed { observed } => observed.poll(cx),
            AroundProjection::Held { held } => held.as_mut().poll(cx),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer being made inside its span, with its id as the
    /// current request id; on completion the id header and the metric.
    pub struct Observed<F> {
        #[pin]
        inner: Instrumented<TaskLocalFuture<Arc<str>, F>>,
        // The request's id as a header value.
        header: Option<HeaderValue>,
        // The span again, to record the status on (only when exported).
        exported: Option<tracing::Span>,
        started: Instant,
        method: Value,
        route: Value,
        state: AppState,
    }
}

/// Request id, server span and duration metric for `req`, answered by
/// `inner` (called now, inside the span and with the id current, as the
/// guard's refusals need it).
fn observe<S>(state: &AppState, req: Request, inner: &mut S) -> Observed<S::Future>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let id = request_id::shared_from_incoming(req.headers().get(request_id::HEADER));
    let route = route_of(&req, state.config().chaos_enabled);
    let exported = crate::trace_export();
    let span = if exported {
        let method = req.method();
        tracing::info_span!(
            "HTTP request",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            url.path = %req.uri().path(),
            http.route = %route,
            http.response.status_code = tracing::field::Empty,
            request_id = %id,
        )
    } else {
        // Nothing exports spans: the span only gives the log lines written
        // while the request is handled its name and trace ids; attributes
        // would be formatted on every request for nobody.
        tracing::info_span!("HTTP request")
    };
    if req.headers().contains_key("traceparent") {
        chaoslab_telemetry::set_parent_from_headers(
            &span,
            req.headers()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes())),
        );
    }
    let started = Instant::now();
    let header = HeaderValue::from_str(&id).ok();
    let method = method_name(req.method());
    let future = span.in_scope(|| request_id::sync_scope(id.clone(), || inner.call(req)));
    Observed {
        exported: exported.then(|| span.clone()),
        inner: request_id::scoped(id, future).instrument(span),
        header,
        started,
        method,
        route,
        state: state.clone(),
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for Observed<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        let status = response.status();
        if let Some(span) = this.exported.as_ref() {
            span.record("http.response.status_code", i64::from(status.as_u16()));
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        if let Some(value) = this.header.take() {
            response.headers_mut().insert(request_id::HEADER, value);
        }
        this.state.metrics().http_server_duration.record(
            this.started.elapsed().as_secs_f64(),
            &[
                KeyValue::new("http.request.method", this.method.clone()),
                KeyValue::new("http.route", this.route.clone()),
                KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
            ],
        );
        Poll::Ready(Ok(response))
    }
}

/// The route the router will match (`http.route`), known before routing
/// (this layer wraps the whole router): every route is a fixed path, so it
/// is the request's path when that is one of them and "unmatched" when
/// not (a 404) — the chaos routes only when the chaos API is on.
fn route_of(req: &Request, chaos_enabled: bool) -> Value {
    let path = req.uri().path();
    match crate::routes::ROUTES.iter().find(|r| **r == path) {
        Some(route) if chaos_enabled || !route.starts_with("/chaos/") => Value::from(*route),
        _ => Value::from("unmatched"),
    }
}

/// A method's name, or `_OTHER` for one HTTP does not define (as the
/// OpenTelemetry conventions say): any token is a method, and a label per
/// made-up method would let clients grow the metric's series without
/// bound, crowding real ones out of the SDK's cardinality limit.
fn method_name(method: &Method) -> Value {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT",
    ];
    match STANDARD.iter().find(|name| **name == method.as_str()) {
        Some(name) => Value::from(*name),
        None => Value::from("_OTHER"),
    }
}

#[cfg(test)]
mod tests {
    //! The guard in the service's own stack, without a socket: refusals
    //! carry the standard error body and X-Request-ID; what passes reaches
    //! the routes.

    use axum::body::Body;
    use clap::Parser;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::{AppState, ServeArgs, ServiceMetrics};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn app(argv: &[&str]) -> crate::App {
        let mut full = vec!["serve", "--redis-enabled", "false"];
        full.extend_from_slice(argv);
        let config = Cli::try_parse_from(full).unwrap().args.validate().unwrap();
        let render = std::sync::Arc::new(String::new) as crate::MetricsRenderer;
        crate::app(AppState::new(config, ServiceMetrics::new(), render).unwrap())
    }

    async fn call(
        app: &crate::App,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, serde_json::Value, bool) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let has_id = response.headers().contains_key("x-request-id");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_default(),
            has_id,
        )
    }

    /// Made-up methods share one label value; the defined ones keep theirs.
    #[test]
    fn methods_http_does_not_define_are_labelled_other() {
        use opentelemetry::Value;
        for (method, label) in [
            ("GET", "GET"),
            ("PATCH", "PATCH"),
            ("FOO1", "_OTHER"),
            ("get", "_OTHER"),
        ] {
            let method = http::Method::from_bytes(method.as_bytes()).expect("a token");
            assert_eq!(super::method_name(&method), Value::from(label));
        }
    }

    #[tokio::test]
    async fn browser_attacks_get_the_standard_error_body() {
        let app = app(&[]);
        let (status, body, has_id) = call(&app, "GET", "/", &[("host", "evil.example:8000")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"], "Forbidden");
        assert!(has_id);
        assert_eq!(
            body["request_id"].as_str().map(str::len),
            Some(36),
            "{body}"
        );
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("evil.example:8000"), "{detail}");
        assert!(detail.ends_with("ALLOWED_HOSTS"), "{detail}");
        let reset = "/chaos/redis-reset";
        let (status, body, _) =
            call(&app, "POST", reset, &[("origin", "https://evil.example")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body, _) = call(&app, "POST", reset, &[("content-type", "text/plain")]).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        assert_eq!(body["error"], "Unsupported Media Type");
        // Past the guard: Redis is disabled here, so the route says 503.
        let (status, _, _) = call(&app, "POST", reset, &[("host", "localhost:8000")]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn off_loopback_without_allowed_hosts_any_host_is_answered() {
        let open = app(&["--app-host", "0.0.0.0", "--chaos-enabled", "false"]);
        let (status, _, _) = call(&open, "GET", "/livez", &[("host", "app.example")]).await;
        assert_eq!(status, StatusCode::OK);
        // A change from another site is still refused.
        let (status, _, _) = call(
            &open,
            "POST",
            "/",
            &[("host", "app.example"), ("origin", "https://evil.example")],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let named = app(&[
            "--app-host",
            "0.0.0.0",
            "--chaos-enabled",
            "false",
            "--allowed-hosts",
            "app.example",
        ]);
        for (host, expected) in [
            ("app.example", StatusCode::OK),
            ("10.244.0.7:8000", StatusCode::OK),
            ("evil.example", StatusCode::FORBIDDEN),
        ] {
            let (status, _, _) = call(&named, "GET", "/livez", &[("host", host)]).await;
            assert_eq!(status, expected, "{host}");
        }
    }
}
