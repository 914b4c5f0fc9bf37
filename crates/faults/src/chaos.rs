//! App-level chaos through the service's own API (`/chaos/load`, `/hang`,
//! `/redis-reset`, `/status`): once through the ingress (one replica, as a
//! user's request would land), or on every ready replica of the active
//! revision directly. Each answer is reported per replica. A request-scope
//! hang only lasts while its request is open, so a hang the replica has not
//! answered within a second is held open in the background (bounded, and
//! never beyond its duration plus a margin) and reported as pending.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::LabHandle;

/// How long a chaos call to one replica may take before it is reported as
/// pending (a hang) or failed.
const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// Deadline of a call that is not a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many hung requests the lab holds open at once.
pub const MAX_HELD: usize = 64;

/// One replica's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The replica (from the answer, or the one called); none through the
    /// ingress when the answer does not say.
    pub replica: Option<String>,
    /// HTTP status; none when pending or unreachable.
    pub status: Option<u16>,
    /// The JSON answer.
    pub body: Value,
    /// A hang the lab holds open.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Why there is no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Calls `/chaos/{op}` on every ready replica of the active revision.
pub async fn on_every_replica(
    lab: &Arc<LabHandle>,
    method: Method,
    op: &str,
    body: Option<Value>,
) -> Vec<Answer> {
    let active = lab.platform.active();
    let targets: Vec<(String, u16)> = lab
        .platform
        .replicas()
        .into_iter()
        .filter(|r| Some(&r.revision) == active.as_ref() && r.ready && r.pid.is_some())
        .map(|r| (r.id, r.port))
        .collect();
    let calls = targets.into_iter().map(|(id, port)| {
        let url = format!("http://127.0.0.1:{port}/chaos/{op}");
        call(lab, method.clone(), url, body.clone(), Some(id))
    });
    futures::future::join_all(calls).await
}

/// Calls `/chaos/{op}` once through the ingress.
pub async fn through_ingress(
    lab: &Arc<LabHandle>,
    method: Method,
    op: &str,
    body: Option<Value>,
) -> Vec<Answer> {
    let url = format!("{}/chaos/{op}", lab.ingress_url.trim_end_matches('/'));
    vec![call(lab, method, url, body, None).await]
}

async fn call(
    lab: &Arc<LabHandle>,
    method: Method,
    url: String,
    body: Option<Value>,
    replica: Option<String>,
) -> Answer {
    let hang_for = body
        .as_ref()
        .filter(|_| url.ends_with("/chaos/hang") && method == Method::POST)
        .map(|b| b["duration_seconds"].as_u64().unwrap_or(0));
    let mut request = lab.http.request(method, &url);
    if let Some(token) = lab.platform.chaos_token() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &body {
        request = request.json(body);
    }
    let hold = hang_for.map(|s| match s {
        0 => Duration::from_secs(3600 + 10),
        s => Duration::from_secs(s.min(3600) + 10),
    });
    let request = request.timeout(hold.unwrap_or(CALL_TIMEOUT));
    let send = async move {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Ok::<_, reqwest::Error>((status, body))
    };
    let answer =
        |result: Result<(u16, Value), reqwest::Error>, replica: Option<String>| match result {
            Ok((status, body)) => Answer {
                replica: body["replica"].as_str().map(String::from).or(replica),
                status: Some(status),
                body,
                pending: false,
                error: None,
            },
            Err(e) => Answer {
                replica,
                status: None,
                body: Value::Null,
                pending: false,
                error: Some(e.to_string()),
            },
        };
    if hold.is_none() {
        return answer(send.await, replica);
    }
    // A hang: hold the request open in the background if it does not end soon.
    let Ok(permit) = lab.held.clone().try_acquire_owned() else {
        return Answer {
            replica,
            status: None,
            body: Value::Null,
            pending: false,
            error: Some(format!("the lab already holds {MAX_HELD} hung requests")),
        };
    };
    let stop = lab.platform.shutdown().clone();
    let mut task = tokio::spawn(async move {
        let _permit = permit;
        tokio::select! {
            result = send => Some(result),
            _ = stop.cancelled() => None,
        }
    });
    match tokio::time::timeout(ANSWER_WAIT, &mut task).await {
        Ok(Ok(Some(result))) => answer(result, replica),
        Ok(_) => answer_pending(replica, "the lab is stopping"),
        Err(_) => answer_pending(replica, ""),
    }
}

fn answer_pending(replica: Option<String>, why: &str) -> Answer {
    Answer {
        replica,
        status: None,
        body: serde_json::json!({"status": "hang_started"}),
        pending: why.is_empty(),
        error: (!why.is_empty()).then(|| why.to_string()),
    }
}
