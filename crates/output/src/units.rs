//! Durations, latencies, sizes, rates and ratios spelled the same way in
//! every command: seconds with one decimal (`21.3s`), whole milliseconds
//! (`12ms`), latencies with a precision that suits their size, sizes in
//! binary units (`1.5 MiB`), rates per second and percentages; a missing
//! figure is a dash.

use std::time::Duration;

/// What every formatter prints for a figure that was not measured.
pub const MISSING: &str = "-";

/// `21.3s`.
pub fn seconds(s: f64) -> String {
    format!("{s:.1}s")
}

/// `21.3s`, or a dash.
pub fn seconds_or_dash(s: Option<f64>) -> String {
    s.map_or_else(|| MISSING.into(), seconds)
}

/// A whole number of seconds: `52s`.
pub fn whole_seconds(s: u64) -> String {
    format!("{s}s")
}

/// An elapsed time with two decimals: `1.23s` (start-up, short waits).
pub fn elapsed(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// `12ms`, or a dash.
pub fn millis_or_dash(ms: Option<f64>) -> String {
    ms.map_or_else(|| MISSING.into(), |v| format!("{v:.0}ms"))
}

/// A latency in ms (no unit) with a precision that suits its size:
/// `3.14`, `31.4`, `314`; a dash when none.
pub fn latency_ms(ms: Option<f64>) -> String {
    match ms {
        None => MISSING.into(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

/// A size in binary units: `512 B`, `1.5 KiB`, `12.0 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Mebibytes with one decimal, no unit (a `MEM MiB` column).
pub fn mib(value: f64) -> String {
    format!("{value:.1}")
}

/// A rate per second: `12.5/s`.
pub fn rate(per_second: f64) -> String {
    format!("{per_second:.1}/s")
}

/// A ratio 0..1 as a percentage with two decimals: `99.50%`, or a dash.
pub fn ratio_percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| MISSING.into(), |r| format!("{:.2}%", r * 100.0))
}

/// A percentage with one decimal, no sign (a `CPU%` column): `12.5`.
pub fn percent(value: f64) -> String {
    format!("{value:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_every_unit() {
        assert_eq!(seconds(21.34), "21.3s");
        assert_eq!(seconds_or_dash(None), "-");
        assert_eq!(whole_seconds(52), "52s");
        assert_eq!(elapsed(Duration::from_millis(1234)), "1.23s");
        assert_eq!(millis_or_dash(Some(12.4)), "12ms");
        assert_eq!(latency_ms(Some(4.567)), "4.57");
        assert_eq!(latency_ms(Some(31.4159)), "31.4");
        assert_eq!(latency_ms(Some(314.159)), "314");
        assert_eq!(latency_ms(None), "-");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12 * 1024 * 1024), "12.0 MiB");
        assert_eq!(mib(3.25), "3.2");
        assert_eq!(rate(12.46), "12.5/s");
        assert_eq!(ratio_percent(Some(0.995)), "99.50%");
        assert_eq!(ratio_percent(None), "-");
        assert_eq!(percent(7.0), "7.0");
    }
}
