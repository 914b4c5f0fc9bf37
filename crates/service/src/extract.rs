//! Request-body extractors that answer bad input the seed's way: a body of
//! the wrong shape, a missing or mistyped field, a float where an integer
//! belongs or malformed JSON is a 400 naming the field and what it expects
//! (see `crate::body`), a body that is not JSON a 415, and one over 64 KiB a
//! 413 — always in the standard error body, never axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use http::StatusCode;
use http::header::CONTENT_TYPE;

use crate::body::{self, FromJsonObject};
use crate::error::ApiError;

/// A required JSON object body.
pub struct JsonBody<T>(pub T);

/// A JSON object body that may be left out entirely (`None`).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: FromJsonObject> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match read_json(req, state).await? {
            Some(value) => Ok(JsonBody(value)),
            None => Err(ApiError::bad_request(format!(
                "a JSON object body is required, with the fields {} (see GET /openapi.json)",
                T::FIELDS.join(", ")
            ))),
        }
    }
}

impl<S: Send + Sync, T: FromJsonObject> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(OptionalJsonBody(read_json(req, state).await?))
    }
}

/// Whether a Content-Type names JSON (`application/json`, `…+json`).
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

async fn read_json<S: Send + Sync, T: FromJsonObject>(
    req: Request,
    state: &S,
) -> Result<Option<T>, ApiError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().is_ok_and(is_json_content_type));
    let bytes = Bytes::from_request(req, state).await?;
    // No body at all is a left-out body; anything else, whitespace
    // included, must be JSON.
    if bytes.is_empty() {
        return Ok(None);
    }
    if is_json != Some(true) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    body::parse(&bytes).map(Some)
}
