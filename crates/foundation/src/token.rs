//! Comparing a secret someone sent with the one we hold without telling
//! them, through the time the comparison takes, how much of it they got
//! right. The lab's control API and the service's chaos endpoints both
//! check a bearer token this way.

/// Whether `a` and `b` are equal, in time that depends only on their
/// lengths (a length mismatch answers at once: the length of a token is
/// not its secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y))
            == 0
}

/// Whether an `Authorization` header value is `Bearer <token>` (the
/// scheme as written, the token compared in constant time; whitespace
/// around the token is ignored). `None` (no header) never matches.
pub fn bearer_matches(authorization: Option<&str>, token: &str) -> bool {
    authorization
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn equal_and_unequal() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn bearer_header() {
        assert!(bearer_matches(Some("Bearer tok"), "tok"));
        assert!(bearer_matches(Some("Bearer  tok "), "tok"));
        assert!(!bearer_matches(Some("Bearer tok2"), "tok"));
        assert!(!bearer_matches(Some("Basic tok"), "tok"));
        assert!(!bearer_matches(Some("tok"), "tok"));
        assert!(!bearer_matches(Some("Bearer "), "tok"));
        assert!(!bearer_matches(None, "tok"));
    }

    proptest! {
        #[test]
        fn agrees_with_plain_equality(a: Vec<u8>, b: Vec<u8>) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
            prop_assert!(constant_time_eq(&a, &a));
        }
    }
}
