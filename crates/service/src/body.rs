//! Request bodies read field by field, so that every refusal names the field
//! and says what it expects. serde's derived `Deserialize` would accept a
//! JSON array as the positional form of a struct, call a mistyped enum
//! "malformed JSON" and leak Rust type names ("expected struct
//! LoadRequest"); here a body must be a JSON object, unknown fields are
//! refused by name, `null` in an optional field means "left out", and each
//! value is checked against the same bounds `/openapi.json` states.

use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A request body type: built from the fields of a JSON object.
pub trait FromJsonObject: Sized {
    /// The fields this body may have, in the order the API documents them.
    const FIELDS: &'static [&'static str];
    /// Reads the fields; every error names its field.
    fn from_fields(fields: &mut Fields) -> Result<Self, ApiError>;
}

/// Parses `bytes` (already known to be a JSON body) into `T`.
pub fn parse<T: FromJsonObject>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "malformed JSON: {}; send a JSON object with the fields {}",
            syntax_error(&e),
            field_list(T::FIELDS)
        ))
    })?;
    let mut fields = Fields::new(value, T::FIELDS)?;
    T::from_fields(&mut fields)
}

/// serde_json's message without its Rust-facing parts.
fn syntax_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!(
            "it ends too early, at line {} column {}",
            e.line(),
            e.column()
        ),
        _ => {
            // "expected `,` or `}` at line 1 column 17" and the like: JSON
            // grammar, no Rust types.
            let text = e.to_string();
            text.split(" at line ").next().unwrap_or(&text).to_string()
                + &format!(" at line {} column {}", e.line(), e.column())
        }
    }
}

fn field_list(fields: &[&str]) -> String {
    fields.join(", ")
}

/// What a JSON value is, in the words of the API's users.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a value for an error detail (long strings cut).
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// The fields of a JSON object body, taken out one by one.
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Checks that `value` is an object with only `known` fields.
    pub fn new(value: Value, known: &[&str]) -> Result<Self, ApiError> {
        let map = match value {
            Value::Object(map) => map,
            other => {
                return Err(ApiError::bad_request(format!(
                    "the body must be a JSON object with the fields {}, got {}",
                    field_list(known),
                    kind(&other)
                )));
            }
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown field {}; the fields are {}",
                shown(&Value::String(unknown.clone())),
                field_list(known)
            )));
        }
        Ok(Fields { map })
    }

    /// The field's value; `null` counts as left out.
    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// A required integer within `range`.
    pub fn int(&mut self, name: &str, range: RangeInclusive<i64>) -> Result<i64, ApiError> {
        self.opt_int(name, range.clone())?
            .ok_or_else(|| missing(name, &integer_in(&range)))
    }

    /// An optional integer within `range` (absent or `null`: `None`).
    pub fn opt_int(
        &mut self,
        name: &str,
        range: RangeInclusive<i64>,
    ) -> Result<Option<i64>, ApiError> {
        let Some(value) = self.take(name) else {
            return Ok(None);
        };
        let wanted = integer_in(&range);
        let n = match &value {
            Value::Number(n) => n.as_i64(),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "{name} must be {wanted}, got {}",
                    kind(&value)
                )));
            }
        };
        match n {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be {wanted}, got {}",
                shown(&value)
            ))),
        }
    }

    /// A required string, one of the names in `choices`; its value.
    pub fn choice<T: Copy>(&mut self, name: &str, choices: &[(&str, T)]) -> Result<T, ApiError> {
        self.opt_choice(name, choices)?
            .ok_or_else(|| missing(name, &one_of(choices)))
    }

    /// An optional string, one of the names in `choices`; its value.
    pub fn opt_choice<T: Copy>(
        &mut self,
        name: &str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, ApiError> {
        let Some(value) = self.take(name) else {
            return Ok(None);
        };
        let found = value
            .as_str()
            .and_then(|s| choices.iter().find(|(c, _)| *c == s))
            .map(|(_, v)| *v);
        found.map(Some).ok_or_else(|| {
            let got = if value.is_string() {
                shown(&value)
            } else {
                kind(&value).to_string()
            };
            ApiError::bad_request(format!("{name} must be {}, got {got}", one_of(choices)))
        })
    }

    /// An optional boolean.
    pub fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, got {}",
                kind(&other)
            ))),
        }
    }
}

fn integer_in(range: &RangeInclusive<i64>) -> String {
    if *range.end() == i64::MAX {
        format!("an integer of at least {}", range.start())
    } else {
        format!("an integer from {} to {}", range.start(), range.end())
    }
}

fn one_of<T>(choices: &[(&str, T)]) -> String {
    let quoted: Vec<String> = choices.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    format!("one of {}", quoted.join(", "))
}

fn missing(name: &str, wanted: &str) -> ApiError {
    ApiError::bad_request(format!("{name} is required: {wanted}"))
}

#[cfg(test)]
mod tests;
