//! `GET /metrics` (Prometheus text) and `GET /openapi.json` (the API as
//! OpenAPI 3, kept beside the code in `openapi.json` and adapted to the
//! instance's configuration so that it describes exactly what this instance
//! answers: the token requirement, the chaos paths, memory_mb's bound).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::config::Config;
use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = (state.0.render_metrics)();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The OpenAPI document of this service, for the default configuration
/// with a CHAOS_API_TOKEN optional on every chaos change.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "application/json")],
        document(state.config()),
    )
        .into_response()
}

/// [`OPENAPI`] adapted to `config`: without CHAOS_API_TOKEN no chaos call
/// needs a token (no security, no 401); with one every change needs it;
/// without chaos no /chaos path; memory_mb's maximum is
/// LOAD_MAX_MEMORY_MB.
pub fn document(config: &Config) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(OPENAPI) else {
        return OPENAPI.to_string();
    };
    let max = json!(config.load_max_memory_mb);
    for schema in ["LoadRequest", "LoadStarted"] {
        if let Some(memory) = doc.pointer_mut(&format!(
            "/components/schemas/{schema}/properties/memory_mb"
        )) && let Some(memory) = memory.as_object_mut()
        {
            memory.insert("maximum".into(), max.clone());
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        if !config.chaos_enabled {
            paths.retain(|path, _| !path.starts_with("/chaos"));
        }
        let operations = paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|ops| ops.values_mut())
            .filter_map(Value::as_object_mut);
        for op in operations {
            if !op.contains_key("security") {
                continue;
            }
            if config.chaos_api_token.is_some() {
                op.insert("security".into(), json!([{ "bearer": [] }]));
            } else {
                op.remove("security");
                if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    responses.remove("401");
                }
            }
        }
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: crate::ServeArgs,
    }

    fn config(argv: &[&str]) -> Config {
        let mut full = vec!["serve"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full)
            .expect("parses")
            .args
            .validate()
            .expect("valid")
    }

    fn doc(argv: &[&str]) -> Value {
        serde_json::from_str(&document(&config(argv))).expect("JSON")
    }

    const PATHS: [&str; 10] = [
        "/",
        "/health",
        "/livez",
        "/readyz",
        "/chaos/status",
        "/chaos/load",
        "/chaos/hang",
        "/chaos/redis-reset",
        "/metrics",
        "/openapi.json",
    ];

    #[test]
    fn openapi_is_valid_json_with_every_path() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in PATHS {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }

    /// Every `$ref` points at something that exists.
    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let pointer = r.trim_start_matches('#');
                        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
                    }
                    map.values().for_each(|v| walk(v, doc));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        walk(&doc, &doc);
    }

    #[test]
    fn every_answer_is_described() {
        let doc = doc(&["--chaos-api-token", "t0ken"]);
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                // Any request: a head the parser refuses, a foreign Host.
                for code in ["200", "400", "403", "414", "431"] {
                    assert!(responses.contains_key(code), "{method} {path}: {code}");
                }
                let change = method != "get";
                for code in ["401", "415"] {
                    assert_eq!(
                        responses.contains_key(code),
                        change,
                        "{method} {path}: {code}"
                    );
                }
                let has_body = op.get("requestBody").is_some();
                for code in ["408", "413"] {
                    assert_eq!(
                        responses.contains_key(code),
                        has_body,
                        "{method} {path}: {code}"
                    );
                }
                if has_body {
                    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                    let name = schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                    assert_eq!(
                        doc["components"]["schemas"][name]["additionalProperties"], false,
                        "{name}: unknown fields are refused"
                    );
                }
            }
        }
        assert!(doc["paths"]["/chaos/redis-reset"]["post"]["responses"]["400"].is_object());
        assert!(doc["paths"]["/chaos/load"]["post"]["responses"]["409"].is_object());
    }

    #[test]
    fn the_document_follows_the_configuration() {
        let plain = doc(&["--load-max-memory-mb", "256"]);
        let memory = &plain["components"]["schemas"]["LoadRequest"]["properties"]["memory_mb"];
        assert_eq!(memory["maximum"], 256);
        assert_eq!(memory["minimum"], 0);
        assert_eq!(memory["nullable"], true);
        let load = &plain["paths"]["/chaos/load"]["post"];
        assert!(load.get("security").is_none());
        assert!(load["responses"].get("401").is_none());

        let token = doc(&["--chaos-api-token", "t0ken"]);
        let load = &token["paths"]["/chaos/load"]["post"];
        assert_eq!(load["security"], json!([{ "bearer": [] }]));
        assert!(load["responses"]["401"].is_object());
        assert!(
            token["paths"]["/chaos/status"]["get"]
                .get("security")
                .is_none()
        );

        let off = doc(&["--chaos-enabled", "false"]);
        let paths = off["paths"].as_object().unwrap();
        assert!(paths.keys().all(|p| !p.starts_with("/chaos")), "{paths:?}");
        assert!(paths.contains_key("/health"));
    }
}
