//! Timestamps as chaoslab writes them: RFC 3339, UTC, `Z`, milliseconds
//! (`2026-01-02T03:04:05.678Z`) — in error bodies, `GET /` and `/health`
//! answers, lab events, fault and experiment records. One format, so that
//! every record sorts and parses the same way.
//!
//! Seconds precision ([`rfc3339_secs`]) is for the few places whose readers
//! expect whole seconds (Kubernetes annotations, Locust-style failure
//! reports).

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339(Utc::now())
}

/// `at`, RFC 3339 UTC with milliseconds.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, RFC 3339 UTC in whole seconds.
pub fn now_rfc3339_secs() -> String {
    rfc3339_secs(Utc::now())
}

/// `at`, RFC 3339 UTC in whole seconds (`2026-01-02T03:04:05Z`).
pub fn rfc3339_secs(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_z() {
        let at = DateTime::from_timestamp_millis(1_767_323_045_678).unwrap();
        assert_eq!(rfc3339(at), "2026-01-02T03:04:05.678Z");
        assert_eq!(rfc3339_secs(at), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn whole_seconds_keep_their_milliseconds() {
        let at = DateTime::from_timestamp(1_767_323_045, 0).unwrap();
        assert_eq!(rfc3339(at), "2026-01-02T03:04:05.000Z");
    }

    #[test]
    fn now_parses_back_and_is_close() {
        let text = now_rfc3339();
        let parsed = DateTime::parse_from_rfc3339(&text).unwrap();
        let skew = (Utc::now() - parsed.with_timezone(&Utc))
            .num_seconds()
            .abs();
        assert!(skew < 60, "{text}");
        assert_eq!(text.len(), "2026-01-02T03:04:05.678Z".len(), "{text}");
        let secs = now_rfc3339_secs();
        assert!(DateTime::parse_from_rfc3339(&secs).is_ok(), "{secs}");
        assert_eq!(secs.len(), "2026-01-02T03:04:05Z".len(), "{secs}");
    }
}
