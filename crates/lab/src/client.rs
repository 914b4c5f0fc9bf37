//! The one client of the control API (issue 12): the CLI (status, logs,
//! revisions, faults, chaos), experiments and `down` use it. It finds the
//! running lab through its state file, authenticates with the token kept
//! there, and calls the same endpoints the tests and the console use.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chaoslab_foundation::proc::alive;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;

use crate::state::StateFile;

pub use reqwest::Method;

/// How long a change may take to answer ([`LabClient::call`]): a fault
/// that restarts Redis, a chaos call on every replica.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a CLI command could not talk to the lab.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no lab running in {}: start one with `chaoslab up`", .0.display())]
    NoLab(PathBuf),
    #[error(
        "the lab in {dir} (pid {pid}) is not running any more; remove {dir}/lab.json or run `chaoslab up`"
    )]
    Stale { dir: PathBuf, pid: u32 },
    #[error("cannot reach the lab's control API: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the lab answered {status}: {detail}")]
    Api { status: u16, detail: String },
    #[error("{0}")]
    Timeout(String),
    #[error("`{0}` cannot be a name in a URL path (empty, `.` and `..` name no resource)")]
    BadName(String),
}

/// How long a JSON-lines stream may send nothing before the lab is taken
/// for frozen: three of the control API's 10-second heartbeats.
pub const STREAM_SILENCE: Duration = Duration::from_secs(30);

/// What stays as it is in a path segment or a query value: RFC 3986's
/// unreserved characters. Everything else is percent-encoded as UTF-8.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` as one path segment (a revision name, a replica or fault id):
/// every byte but the unreserved ones percent-encoded, so `/`, `?`, `#`
/// and `%` stay part of the name. Empty, `.` and `..` are refused: URL
/// parsers resolve them as dot segments whatever their encoding.
pub fn path_segment(text: &str) -> Result<String, ClientError> {
    if matches!(text, "" | "." | "..") {
        return Err(ClientError::BadName(text.to_string()));
    }
    Ok(utf8_percent_encode(text, COMPONENT).to_string())
}

/// `text` as a query value: `&`, `=`, `+`, `#` and the rest
/// percent-encoded.
pub fn query_value(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// `path_and_query` as written (an experiment's `/chaos/load?x=1`) on
/// `base`: characters a URL cannot hold (space, non-ASCII, `"`, `<`…) are
/// percent-encoded, a `#` stays part of the path or query instead of
/// starting a fragment the server would never see, and an existing `%XX`
/// is kept. `base`'s own path, if any, is kept in front.
pub fn url_on(base: &str, path_and_query: &str) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(base).map_err(|e| format!("`{base}` is not a base URL: {e}"))?;
    if url.cannot_be_a_base() {
        return Err(format!("`{base}` is not a base URL"));
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let path = format!("{}{path}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(query);
    url.set_fragment(None);
    Ok(url)
}

/// A connection to a running lab's control API.
#[derive(Debug, Clone)]
pub struct LabClient {
    pub state: StateFile,
    http: reqwest::Client,
}

impl LabClient {
    /// Reads `<state_dir>/lab.json`.
    pub fn discover(state_dir: &Path) -> Result<Self, ClientError> {
        let state =
            StateFile::read(state_dir).map_err(|_| ClientError::NoLab(state_dir.to_path_buf()))?;
        if !state.lab_alive() {
            return Err(ClientError::Stale {
                dir: state_dir.to_path_buf(),
                pid: state.pid,
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .no_proxy()
            .build()?;
        Ok(Self { state, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.state.control_url)
    }

    async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let detail = body["detail"].as_str().unwrap_or("no detail").to_string();
        Err(ClientError::Api { status, detail })
    }

    /// GETs a JSON document.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.state.token)
            .timeout(Duration::from_secs(15))
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// POSTs a JSON body and returns the JSON answer.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.state.token)
            .json(body)
            .timeout(Duration::from_secs(15))
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// Calls `method path` with an optional JSON body and waits up to
    /// `timeout` (a fault or a chaos call on every replica may take a
    /// while); the JSON answer (null when there is none), or the lab's
    /// error detail.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.state.token)
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = Self::check(request.send().await?).await?;
        Ok(response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Reads a JSON-lines endpoint, calling `on_line` per line until it
    /// breaks or the stream ends (follow streams end when the lab stops).
    /// Fails when the lab does not answer within 15 s or then sends
    /// nothing for [`STREAM_SILENCE`] (a follow stream sends an empty line
    /// every 10 s when it has nothing else to say): a frozen lab ends the
    /// wait. Empty lines are not handed to `on_line`.
    pub async fn lines(
        &self,
        path: &str,
        on_line: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), ClientError> {
        self.lines_within(path, STREAM_SILENCE, on_line).await
    }

    async fn lines_within(
        &self,
        path: &str,
        silence: Duration,
        mut on_line: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), ClientError> {
        let frozen = |what: String| {
            ClientError::Timeout(format!(
                "{what}: the lab (pid {}) is frozen or overloaded; `chaoslab status` shows whether it answers",
                self.state.pid
            ))
        };
        let request = self.http.get(self.url(path)).bearer_auth(&self.state.token);
        let answer = Duration::from_secs(15);
        let response = tokio::time::timeout(answer, request.send())
            .await
            .map_err(|_| frozen(format!("no answer to {path} within {answer:?}")))??;
        let mut response = Self::check(response).await?;
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let Some(chunk) = tokio::time::timeout(silence, response.chunk())
                .await
                .map_err(|_| frozen(format!("nothing on {path} for {silence:?}")))??
            else {
                return Ok(());
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end();
                if !text.is_empty() && on_line(text).is_break() {
                    return Ok(());
                }
            }
            if buffer.len() > 1 << 20 {
                buffer.clear();
            }
        }
    }

    /// Asks the lab to stop and waits until its process is gone.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), ClientError> {
        self.post("/api/shutdown", &serde_json::Value::Null).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while alive(self.state.pid) {
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "the lab (pid {}) did not stop within {timeout:?}",
                    self.state.pid
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Polls a revision until it is no longer Provisioning.
    pub async fn wait_revision(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let path = format!("/api/revisions/{}", path_segment(name)?);
            let revision: serde_json::Value = self.get(&path).await?;
            if revision["state"] != "Provisioning" {
                return Ok(revision);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "revision {name} still provisioning after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::{Path as UrlPath, Query};
    use axum::routing::{get, post};

    /// Names a user may type: every one must reach the server unchanged.
    const AWKWARD: [&str; 9] = [
        "plain-name_1.2~x",
        "with space",
        "a/b",
        "what?x=1&y=2",
        "frag#ment",
        "100%25 and %zz",
        "grüße-日本-🦀",
        "+plus+",
        "...",
    ];

    fn client_for(control_url: String) -> LabClient {
        LabClient {
            state: StateFile {
                pid: std::process::id(),
                pid_start_time: None,
                started_at: String::new(),
                ingress_url: String::new(),
                control_url,
                token: "t".into(),
                redis: String::new(),
                redis_pid: None,
            },
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    #[derive(serde::Deserialize)]
    struct Replica {
        replica: String,
    }

    #[tokio::test]
    async fn typed_names_reach_the_server_as_typed() {
        let app = axum::Router::new()
            .route(
                "/api/revisions/{name}",
                get(|UrlPath(name): UrlPath<String>| async move {
                    axum::Json(serde_json::json!({"name": name, "state": "Running"}))
                }),
            )
            .route(
                "/api/revisions/{name}/activate",
                post(|UrlPath(name): UrlPath<String>| async move {
                    axum::Json(serde_json::json!({"name": name}))
                }),
            )
            .route(
                "/api/logs",
                get(|Query(q): Query<Replica>| async move {
                    axum::Json(serde_json::json!({"replica": q.replica}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = client_for(format!("http://{addr}"));
        for name in AWKWARD {
            let got = client
                .wait_revision(name, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(got["name"], name, "GET revision {name:?}");
            let path = format!("/api/revisions/{}/activate", path_segment(name).unwrap());
            let got = client.post(&path, &serde_json::Value::Null).await.unwrap();
            assert_eq!(got["name"], name, "POST activate {name:?}");
            let path = format!("/api/logs?tail=1&replica={}", query_value(name));
            let got: serde_json::Value = client.get(&path).await.unwrap();
            assert_eq!(got["replica"], name, "query value {name:?}");
        }
        server.abort();
    }

    #[tokio::test]
    async fn a_silent_stream_is_a_frozen_lab_and_empty_lines_are_skipped() {
        use futures::StreamExt;
        // Two lines with heartbeats between them, then silence.
        let app = axum::Router::new().route(
            "/api/events",
            get(|| async {
                let lines = futures::stream::iter(["{\"a\":1}\n", "\n", "\n{\"b\":2}\n"])
                    .map(|l| Ok::<_, std::convert::Infallible>(l.to_string()))
                    .chain(futures::stream::pending());
                axum::body::Body::from_stream(lines)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = client_for(format!("http://{addr}"));
        let mut seen = Vec::new();
        let silence = Duration::from_millis(300);
        let read = client.lines_within("/api/events?follow=true", silence, |line| {
            seen.push(line.to_string());
            ControlFlow::Continue(())
        });
        let error = tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("the silence ended the wait")
            .unwrap_err();
        assert_eq!(seen, [r#"{"a":1}"#, r#"{"b":2}"#], "empty lines skipped");
        let message = error.to_string();
        assert!(message.contains("nothing on /api/events"), "{message}");
        assert!(message.contains("frozen"), "{message}");
        server.abort();
    }

    #[test]
    fn dot_segments_and_empty_names_are_refused() {
        for name in ["", ".", ".."] {
            let err = path_segment(name).unwrap_err();
            assert!(err.to_string().contains("cannot be a name"), "{err}");
        }
        assert_eq!(
            path_segment("a b/c?d#e%f").unwrap(),
            "a%20b%2Fc%3Fd%23e%25f"
        );
        assert_eq!(query_value("x&y=z+1"), "x%26y%3Dz%2B1");
        assert_eq!(path_segment("é").unwrap(), "%C3%A9");
    }

    #[test]
    fn written_paths_keep_their_query_and_never_lose_a_fragment() {
        let url = url_on("http://127.0.0.1:9/", "/a b/ü?x=1 2#3").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/a%20b/%C3%BC?x=1%202%233");
        assert_eq!(url.fragment(), None);
        let url = url_on("http://127.0.0.1:9/prefix/", "/chaos/load?level=2").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/prefix/chaos/load?level=2");
        let url = url_on("http://127.0.0.1:9", "/already%20encoded").unwrap();
        assert_eq!(url.path(), "/already%20encoded");
        assert!(url_on("not a url", "/").is_err());
        assert!(url_on("mailto:x@y", "/").is_err());
    }
}
