//! The body parser's messages, and property tests feeding it arbitrary
//! bytes and arbitrary JSON: it never panics, refuses with a 400 whose
//! detail names no Rust type, and accepts exactly what the API documents.

use http::StatusCode;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::routes::chaos::{HangRequest, LoadRequest, ResetRequest};

fn detail<T: FromJsonObject + std::fmt::Debug>(body: &str) -> String {
    let err = parse::<T>(body.as_bytes()).expect_err(body);
    assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body}");
    err.detail
}

#[test]
fn shapes_other_than_an_object_are_refused_naming_the_fields() {
    for (body, kind) in [
        (r#"["low", 5]"#, "an array"),
        (r#""low""#, "a string"),
        ("5", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
    ] {
        let d = detail::<LoadRequest>(body);
        assert_eq!(
            d,
            format!(
                "the body must be a JSON object with the fields level, duration_seconds, cpu_percent, memory_mb, got {kind}"
            )
        );
    }
}

#[test]
fn each_field_error_names_the_field_and_what_it_expects() {
    let cases = [
        (
            r#"{"level": 5, "duration_seconds": 5}"#,
            r#"level must be one of "low", "medium", "high", got a number"#,
        ),
        (
            r#"{"level": "extreme", "duration_seconds": 5}"#,
            r#"level must be one of "low", "medium", "high", got "extreme""#,
        ),
        (
            r#"{"duration_seconds": 5}"#,
            r#"level is required: one of "low", "medium", "high""#,
        ),
        (
            r#"{"level": "low"}"#,
            "duration_seconds is required: an integer from 1 to 3600",
        ),
        (
            r#"{"level": "low", "duration_seconds": 0}"#,
            "duration_seconds must be an integer from 1 to 3600, got 0",
        ),
        (
            r#"{"level": "low", "duration_seconds": 2.5}"#,
            "duration_seconds must be an integer from 1 to 3600, got 2.5",
        ),
        (
            r#"{"level": "low", "duration_seconds": 5.0}"#,
            "duration_seconds must be an integer from 1 to 3600, got 5.0",
        ),
        (
            r#"{"level": "low", "duration_seconds": "60"}"#,
            "duration_seconds must be an integer from 1 to 3600, got a string",
        ),
        (
            r#"{"level": "low", "duration_seconds": 18446744073709551616}"#,
            "duration_seconds must be an integer from 1 to 3600, got 1.8446744073709552e+19",
        ),
        (
            r#"{"level": "low", "duration_seconds": 5, "memory_mb": -1}"#,
            "memory_mb must be an integer of at least 0, got -1",
        ),
        (
            r#"{"level": "low", "duration_seconds": 5, "pad": 1}"#,
            r#"unknown field "pad"; the fields are level, duration_seconds, cpu_percent, memory_mb"#,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(detail::<LoadRequest>(body), want, "{body}");
    }
    assert_eq!(
        detail::<HangRequest>(r#"{"duration_seconds": 1, "scope": 7}"#),
        r#"scope must be one of "request", "process", got a number"#
    );
    assert_eq!(
        detail::<ResetRequest>(r#"{"force": "yes"}"#),
        "force must be true or false, got a string"
    );
    let long = format!(
        r#"{{"level": "{}", "duration_seconds": 1}}"#,
        "x".repeat(500)
    );
    assert!(detail::<LoadRequest>(&long).len() < 200);
}

#[test]
fn malformed_json_says_where() {
    assert_eq!(
        detail::<LoadRequest>(r#"{"level": "low","#),
        "malformed JSON: it ends too early, at line 1 column 16; send a JSON object with the fields level, duration_seconds, cpu_percent, memory_mb"
    );
    assert_eq!(
        detail::<HangRequest>(r#"{"duration_seconds" 1}"#),
        "malformed JSON: expected `:` at line 1 column 21; send a JSON object with the fields duration_seconds, scope"
    );
}

#[test]
fn null_in_an_optional_field_means_left_out() {
    assert!(
        parse::<LoadRequest>(
            br#"{"level": "high", "duration_seconds": 9, "cpu_percent": null, "memory_mb": null}"#
        )
        .is_ok()
    );
    assert!(parse::<HangRequest>(br#"{"duration_seconds": 0, "scope": null}"#).is_ok());
    assert!(parse::<ResetRequest>(br#"{"force": null}"#).is_ok());
    assert!(parse::<ResetRequest>(b"{}").is_ok());
}

/// Words only a Rust deserializer would use.
fn assert_plain_words(detail: &str) {
    for word in [
        "struct",
        "Request",
        "variant",
        "i64",
        "u32",
        "u64",
        "invalid type",
        "invalid length",
    ] {
        assert!(!detail.contains(word), "{detail:?} says {word:?}");
    }
}

/// Arbitrary JSON: scalars, and arrays/objects of them, with the API's
/// field names and values near its bounds over-represented.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("level".to_string()),
        Just("duration_seconds".to_string()),
        Just("cpu_percent".to_string()),
        Just("memory_mb".to_string()),
        Just("scope".to_string()),
        Just("force".to_string()),
        ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![-2i64..=3602, any::<i64>()].prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("low".to_string()),
            Just("medium".to_string()),
            Just("high".to_string()),
            Just("request".to_string()),
            Just("process".to_string()),
            ".{0,20}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn int_in(v: Option<&Value>, lo: i64, hi: i64) -> bool {
    v.and_then(Value::as_i64)
        .is_some_and(|n| (lo..=hi).contains(&n))
}

fn absent_or(v: Option<&Value>, ok: impl Fn(&Value) -> bool) -> bool {
    v.is_none_or(|v| v.is_null() || ok(v))
}

fn only_keys(obj: &Map<String, Value>, keys: &[&str]) -> bool {
    obj.keys().all(|k| keys.contains(&k.as_str()))
}

/// What the API documents as a valid load body.
fn valid_load(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    only_keys(o, LoadRequest::FIELDS)
        && o.get("level")
            .and_then(Value::as_str)
            .is_some_and(|l| ["low", "medium", "high"].contains(&l))
        && int_in(o.get("duration_seconds"), 1, 3600)
        && absent_or(o.get("cpu_percent"), |v| int_in(Some(v), 1, 100))
        && absent_or(o.get("memory_mb"), |v| int_in(Some(v), 0, i64::MAX))
}

fn valid_hang(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    only_keys(o, HangRequest::FIELDS)
        && int_in(o.get("duration_seconds"), 0, 3600)
        && absent_or(o.get("scope"), |v| {
            v.as_str()
                .is_some_and(|s| ["request", "process"].contains(&s))
        })
}

fn valid_reset(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    only_keys(o, ResetRequest::FIELDS) && absent_or(o.get("force"), Value::is_boolean)
}

fn check<T: FromJsonObject>(bytes: &[u8], valid: bool) -> Result<(), TestCaseError> {
    match parse::<T>(bytes) {
        Ok(_) => prop_assert!(valid, "accepted {}", String::from_utf8_lossy(bytes)),
        Err(e) => {
            prop_assert!(!valid, "refused {}: {}", String::from_utf8_lossy(bytes), e);
            prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
            prop_assert!(!e.detail.is_empty());
            assert_plain_words(&e.detail);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_and_are_refused_plainly(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let valid = serde_json::from_slice::<Value>(&bytes).ok();
        check::<LoadRequest>(&bytes, valid.as_ref().is_some_and(valid_load))?;
        check::<HangRequest>(&bytes, valid.as_ref().is_some_and(valid_hang))?;
        check::<ResetRequest>(&bytes, valid.as_ref().is_some_and(valid_reset))?;
    }

    #[test]
    fn arbitrary_json_is_accepted_exactly_when_the_api_says_so(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        check::<LoadRequest>(&bytes, valid_load(&value))?;
        check::<HangRequest>(&bytes, valid_hang(&value))?;
        check::<ResetRequest>(&bytes, valid_reset(&value))?;
    }

    #[test]
    fn arbitrary_load_objects_follow_the_documented_bounds(
        level in prop_oneof![Just(json!("low")), Just(json!("high")), json_value()],
        duration in prop_oneof![(-5i64..3700).prop_map(|n| json!(n)), json_value()],
        cpu in prop::option::of(prop_oneof![(-5i64..105).prop_map(|n| json!(n)), json_value()]),
        memory in prop::option::of(prop_oneof![(-5i64..5000).prop_map(|n| json!(n)), json_value()]),
    ) {
        let mut obj = Map::new();
        obj.insert("level".into(), level);
        obj.insert("duration_seconds".into(), duration);
        if let Some(cpu) = cpu { obj.insert("cpu_percent".into(), cpu); }
        if let Some(memory) = memory { obj.insert("memory_mb".into(), memory); }
        let value = Value::Object(obj);
        check::<LoadRequest>(&serde_json::to_vec(&value).unwrap(), valid_load(&value))?;
    }
}
