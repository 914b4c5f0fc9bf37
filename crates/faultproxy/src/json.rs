//! Reading the Toxiproxy API's JSON by hand. serde's derived structs accept
//! an array where an object is expected (their positional form) and answer
//! a wrong type with Rust's names ("expected struct ProxyConfig", "expected
//! u64"); here a body must be a JSON object and every field is checked on
//! its own, with an error naming the field and what it should be — the 400
//! a Toxiproxy client prints (SPEC section 13: bad input gets a clear error,
//! never a panic). Unknown fields are ignored, as Toxiproxy does.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The body as a JSON object.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        // serde_json's syntax errors name a place, not a Rust type.
        Error::BadRequestBody(format!("not JSON: {e}"))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::BadRequestBody(format!(
            "expected a JSON object, got {}",
            kind(&other)
        ))),
    }
}

/// What a JSON value is, for messages: "a string", "an array"…
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong(field: &str, expected: &str, got: &Value) -> Error {
    Error::BadRequestBody(format!(
        "field {field} must be {expected}, got {}",
        kind(got)
    ))
}

/// An optional string field (`null` counts as absent).
pub(crate) fn opt_string(map: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong(field, "a string", other)),
    }
}

/// An optional boolean field (`null` counts as absent).
pub(crate) fn opt_bool(map: &Map<String, Value>, field: &str) -> Result<Option<bool>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong(field, "true or false", other)),
    }
}

/// An optional number field read as `f32` (`null` counts as absent).
pub(crate) fn opt_f32(map: &Map<String, Value>, field: &str) -> Result<Option<f32>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f as f32))
            .ok_or_else(|| wrong(field, "a number", &Value::Number(n.clone()))),
        Some(other) => Err(wrong(field, "a number", other)),
    }
}

/// An optional object field (`null` counts as absent).
pub(crate) fn opt_object(
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(wrong(field, "an object", other)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_body_is_an_object_and_fields_have_their_types() {
        assert!(object(br#"{"a":1}"#).is_ok());
        let e = object(br#"["redis","127.0.0.1:0","127.0.0.1:6379"]"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad request body: expected a JSON object, got an array"
        );
        assert!(object(b"").unwrap_err().to_string().contains("not JSON"));
        let map = json!({"name": 5, "enabled": "yes", "toxicity": "x", "attributes": []});
        let map = map.as_object().unwrap();
        assert_eq!(
            opt_string(map, "name").unwrap_err().to_string(),
            "bad request body: field name must be a string, got a number"
        );
        assert!(opt_bool(map, "enabled").is_err());
        assert!(opt_f32(map, "toxicity").is_err());
        assert!(opt_object(map, "attributes").is_err());
        assert_eq!(opt_string(map, "missing").unwrap(), None);
    }
}
