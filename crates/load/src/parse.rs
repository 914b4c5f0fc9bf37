//! Small text formats of the command line: durations (`500ms`, `30s`,
//! `1m30s`, `2h`), think-time ranges (`1s..3s`) and arrival rates
//! (`100/s`, `6000/m`). Plans and thresholds build on these.

use std::time::Duration;

/// Parses a duration such as `250ms`, `10s`, `1m30s`, `2h` or a bare number
/// of seconds (`90`, `0.5`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return seconds(secs, text);
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{text}` lacks a unit (ms, s, m, h)"))?;
        if num_len == 0 {
            return Err(format!(
                "`{text}` is not a duration (e.g. 500ms, 30s, 1m30s)"
            ));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{text}` is not a duration"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit `{other}` in `{text}` (ms, s, m, h)")),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    seconds(total, text)
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=1.0e9).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats a duration the way it is typed: `1m30s`, `250ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{:.1}s", d.as_secs_f64())
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A think-time range: each user waits a uniformly random time in
/// `[min, max]` between two tasks (Locust's `between(min, max)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WaitRange {
    /// Shortest wait.
    pub min: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl WaitRange {
    /// No think time at all (users send back to back).
    pub const ZERO: Self = Self {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };
}

/// Parses `1s..3s`, `500ms..1s` or a single fixed duration (`2s`, `0`).
pub fn wait_range(text: &str) -> Result<WaitRange, String> {
    let (min, max) = match text.split_once("..") {
        Some((a, b)) => (duration(a)?, duration(b)?),
        None => {
            let d = duration(text)?;
            (d, d)
        }
    };
    if min > max {
        return Err(format!("`{text}`: the minimum is above the maximum"));
    }
    Ok(WaitRange { min, max })
}

/// Highest arrival rate, requests per second.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Lowest arrival rate above 0, requests per second.
pub const MIN_RATE: f64 = 0.001;

/// Parses an arrival rate in requests per second: `100/s`, `100`,
/// `6000/m`, `2.5/s`.
pub fn rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (num, per) = match text.split_once('/') {
        Some((n, unit)) => {
            let per = match unit.trim() {
                "s" | "sec" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                other => return Err(format!("unknown rate unit `/{other}` (use /s, /m or /h)")),
            };
            (n, per)
        }
        None => (text, 1.0),
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a rate (e.g. 100/s)"))?;
    let per_sec = value / per;
    if !per_sec.is_finite() || !(0.0..=MAX_RATE).contains(&per_sec) {
        return Err(format!("`{text}` is out of range (0 to 10000000/s)"));
    }
    if per_sec > 0.0 && per_sec < MIN_RATE {
        return Err(format!(
            "`{text}` is below the lowest rate, 0.001/s (one request every 17 minutes)"
        ));
    }
    Ok(per_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(duration("10x").is_err());
        assert!(duration("s").is_err());
        assert!(duration("").is_err());
        assert!(duration("-1").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "10s", "1m30s", "2h", "0s", "1h1m1s"] {
            let d = duration(text).expect("parses");
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn wait_ranges() {
        let w = wait_range("1s..3s").expect("range");
        assert_eq!(
            (w.min, w.max),
            (Duration::from_secs(1), Duration::from_secs(3))
        );
        assert_eq!(wait_range("0"), Ok(WaitRange::ZERO));
        assert!(wait_range("3s..1s").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(rate("100/s"), Ok(100.0));
        assert_eq!(rate("100"), Ok(100.0));
        assert_eq!(rate("6000/m"), Ok(100.0));
        assert!(rate("fast").is_err());
        assert!(rate("1/d").is_err());
        assert_eq!(rate("0/s"), Ok(0.0), "0 pauses a plan");
        assert!(rate("1e-20/s").is_err(), "below the lowest rate");
        assert!(rate("1e30/s").is_err());
        assert!(rate("NaN").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_never_panics(text in "\\PC{0,40}") {
            let _ = duration(&text);
            let _ = wait_range(&text);
            if let Ok(r) = rate(&text) {
                proptest::prop_assert!(r == 0.0 || (MIN_RATE..=MAX_RATE).contains(&r));
            }
        }

        #[test]
        fn numbers_with_units_stay_in_range(n in proptest::num::f64::ANY, unit in "(ms|s|m|h|/s|/m|/h|)") {
            let text = format!("{n}{unit}");
            if let Ok(d) = duration(&text) {
                proptest::prop_assert!(d.as_secs_f64() <= 1.0e9);
            }
            let _ = rate(&text);
        }
    }
}
