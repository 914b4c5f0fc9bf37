//! Property tests of how the service reads Redis replies (SPEC 13, issue
//! 11: RESP replies): arbitrary reply trees in the shapes the routes ask
//! for (`/`'s GET+INCR pipeline, the sample's SET NX+GET, health's PING)
//! and arbitrary wire bytes. A reply is a value or an error, never a panic;
//! only NOAUTH and WRONGPASS are authentication failures (the credential is
//! fetched again), an error reply is an operation failure, and a reply of
//! the wrong shape is a connection failure: redis-rs reports it as a parse
//! error, the kind it also uses for a broken stream, and asks for a new
//! connection. None is a timeout.

use proptest::prelude::*;
use redis::{FromRedisValue, PushKind, Value, VerbatimFormat};

use super::error::{StoreError, classify};

fn text() -> impl Strategy<Value = String> {
    "[^\r\n]{0,24}"
}

/// A server error as redis-rs reads it off the wire.
fn server_error(line: &str) -> Value {
    redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
        .unwrap_or_else(|_| Value::SimpleString(line.to_owned()))
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        Just(Value::Okay),
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Value::BulkString),
        text().prop_map(Value::SimpleString),
        any::<f64>().prop_map(Value::Double),
        any::<bool>().prop_map(Value::Boolean),
        text().prop_map(|text| Value::VerbatimString {
            format: VerbatimFormat::Text,
            text
        }),
        prop_oneof![
            text(),
            Just("NOAUTH Authentication required.".to_owned()),
            Just("WRONGPASS invalid username-password pair".to_owned()),
            Just("NOPERM no permissions to run the 'flushall' command".to_owned()),
            Just("LOADING Redis is loading the dataset in memory".to_owned()),
        ]
        .prop_map(|line| server_error(&line)),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|data| Value::Push {
                kind: PushKind::Message,
                data
            }),
            (
                proptest::collection::vec((inner.clone(), inner.clone()), 0..3),
                inner
            )
                .prop_map(|(attributes, data)| Value::Attribute {
                    data: Box::new(data),
                    attributes
                }),
        ]
    })
}

/// What the store makes of a reply read as `T`, as `query_async` does:
/// server errors first, then the conversion.
fn read<T: FromRedisValue>(reply: Value) -> Result<T, StoreError> {
    let reply = reply.extract_error().map_err(|e| classify(&e))?;
    redis::from_redis_value::<T>(reply).map_err(|e| classify(&e.into()))
}

fn is_auth_code(v: &Value) -> bool {
    let mut found = false;
    let mut visit = vec![v];
    while let Some(v) = visit.pop() {
        match v {
            Value::ServerError(e) => {
                found |= matches!(e.code(), "NOAUTH" | "WRONGPASS");
            }
            Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
                visit.extend(items);
            }
            Value::Map(pairs) => visit.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
            Value::Attribute { data, attributes } => {
                visit.push(data);
                visit.extend(attributes.iter().flat_map(|(k, v)| [k, v]));
            }
            _ => {}
        }
    }
    found
}

fn judged<T>(result: &Result<T, StoreError>, reply: &Value) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(!e.to_string().is_empty());
        prop_assert!(!e.public_detail().is_empty());
        match e {
            StoreError::Operation(_) | StoreError::Connection(_) => {}
            StoreError::Auth(_) => prop_assert!(is_auth_code(reply), "auth from {reply:?}"),
            StoreError::Timeout(_) => prop_assert!(false, "{e} from a reply {reply:?}"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// `/`: GET sample + INCR counter in one pipeline.
    #[test]
    fn root_pipeline_replies(a in value(), b in value(), extra in proptest::option::of(value())) {
        let mut items = vec![a, b];
        items.extend(extra);
        let reply = Value::Array(items);
        let result = read::<(Option<String>, i64)>(reply.clone());
        judged(&result, &reply)?;
    }

    /// The sample's SET NX (ignored) + GET, PING's `()` and any single
    /// reply read as the types the service uses.
    #[test]
    fn single_replies(reply in value()) {
        judged(&read::<(Option<String>,)>(Value::Array(vec![reply.clone()])), &reply)?;
        judged(&read::<()>(reply.clone()), &reply)?;
        judged(&read::<Option<String>>(reply.clone()), &reply)?;
        judged(&read::<i64>(reply.clone()), &reply)?;
    }

    /// Arbitrary bytes off the wire: a value, or a parse error the store
    /// reports as an operation failure.
    #[test]
    fn wire_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        match redis::parse_redis_value(&bytes) {
            Ok(reply) => judged(&read::<(Option<String>, i64)>(reply.clone()), &reply)?,
            Err(e) => {
                let error = classify(&e);
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}

#[test]
fn auth_errors_are_recognised_in_any_reply_shape() {
    let noauth = server_error("NOAUTH Authentication required.");
    assert!(matches!(
        read::<()>(noauth.clone()),
        Err(StoreError::Auth(_))
    ));
    let nested = Value::Array(vec![Value::Nil, noauth]);
    assert!(matches!(
        read::<(Option<String>, i64)>(nested),
        Err(StoreError::Auth(_))
    ));
    let noperm = server_error("NOPERM no permissions");
    assert!(matches!(read::<()>(noperm), Err(StoreError::Operation(_))));
    let wrong_shape = Value::Array(vec![Value::Int(1)]);
    assert!(matches!(
        read::<(Option<String>, i64)>(wrong_shape),
        Err(StoreError::Connection(_))
    ));
    let not_utf8 = Value::Array(vec![Value::BulkString(vec![0xff]), Value::Int(1)]);
    let err = read::<(Option<String>, i64)>(not_utf8).unwrap_err();
    assert_eq!(err.public_detail(), "Redis connection failed");
}
