//! The lab console: one web page, embedded in the binary (no build step, no
//! CDN), that draws the lab's metrics live and drives its faults through the
//! same control API the CLI uses; and the alert rules the lab evaluates on
//! its metrics (`alerts`). The lab mounts [`router`] on its control port;
//! the page's token comes from the URL `chaoslab up` prints (in the
//! fragment, never sent to a server).

#![forbid(unsafe_code)]

pub mod alerts;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const CONSOLE_JS: &str = include_str!("../assets/console.js");
const CHARTS_JS: &str = include_str!("../assets/charts.js");
const CONSOLE_CSS: &str = include_str!("../assets/console.css");

/// The page and its assets, public (they hold no secret), at `/`,
/// `/console.js`, `/charts.js` and `/console.css`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", CONSOLE_JS) }),
        )
        .route(
            "/charts.js",
            get(|| async { asset("text/javascript; charset=utf-8", CHARTS_JS) }),
        )
        .route(
            "/console.css",
            get(|| async { asset("text/css; charset=utf-8", CONSOLE_CSS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get_path(path: &str) -> (u16, String, String) {
        let app: Router = router();
        let res = app
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let ct = res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn serves_the_page_and_its_assets() {
        let (status, ct, body) = get_path("/").await;
        assert_eq!(status, 200);
        assert!(ct.starts_with("text/html"));
        assert!(body.contains("/console.js") && body.contains("Block Redis"));
        for (path, kind) in [
            ("/console.js", "javascript"),
            ("/charts.js", "javascript"),
            ("/console.css", "css"),
        ] {
            let (status, ct, body) = get_path(path).await;
            assert_eq!(status, 200, "{path}");
            assert!(ct.contains(kind), "{path}: {ct}");
            assert!(!body.is_empty());
        }
    }

    #[test]
    fn the_page_holds_no_token() {
        assert!(!INDEX_HTML.to_lowercase().contains("bearer "));
    }
}
