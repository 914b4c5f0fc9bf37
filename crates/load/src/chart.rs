//! Inline SVG line charts for the HTML report: no script, no external
//! file, so the page renders anywhere (and in headless Chromium) as is.

use std::fmt::Write as _;

/// One line of a chart.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub color: &'a str,
    /// One value per x; `None` leaves a gap.
    pub values: Vec<Option<f64>>,
}

const W: f64 = 1100.0;
const H: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// A "nice" step (1, 2, 5 × 10^n) giving about `ticks` ticks up to `max`.
fn nice_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * mag
}

fn label(v: f64) -> String {
    if v.abs() >= 100.0 || (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Escapes text for HTML and SVG.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG chart of `series` over `xs` (seconds since the start).
pub fn line_chart(title: &str, unit: &str, xs: &[f64], series: &[Series<'_>]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg">"#,
        t = esc(title)
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="18" class="title">{}</text>"#,
        esc(title)
    );
    let x_max = xs.iter().copied().fold(0.0, f64::max).max(1.0);
    let y_data = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .fold(0.0, f64::max);
    let step = nice_step(if y_data > 0.0 { y_data } else { 1.0 }, 4.0);
    let y_max = (y_data / step).ceil().max(1.0) * step;
    let px = |x: f64| LEFT + x / x_max * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    let mut y = 0.0;
    while y <= y_max + step * 0.01 {
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{x2}" y1="{py:.1}" y2="{py:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{l}</text>"#,
            x2 = W - RIGHT,
            py = py(y),
            tx = LEFT - 6.0,
            ty = py(y) + 4.0,
            l = label(y)
        );
        y += step;
    }
    let xstep = nice_step(x_max, 8.0);
    let mut x = 0.0;
    while x <= x_max + xstep * 0.01 {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}s</text>"#,
            px(x),
            H - BOTTOM + 16.0,
            label(x)
        );
        x += xstep;
    }
    let _ = write!(
        svg,
        r#"<text x="12" y="{:.1}" class="tick" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        esc(unit)
    );
    let mut legend_x = W - RIGHT;
    for s in series.iter().rev() {
        legend_x -= 14.0 + 8.0 * s.name.len() as f64;
        let _ = write!(
            svg,
            r#"<rect x="{legend_x:.1}" y="8" width="10" height="10" fill="{c}"/><text x="{:.1}" y="17" class="tick">{}</text>"#,
            legend_x + 13.0,
            esc(s.name),
            c = s.color
        );
        let mut d = String::new();
        let mut pen_up = true;
        for (x, v) in xs.iter().zip(&s.values) {
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_up { "M" } else { "L" },
                        px(*x),
                        py(*v)
                    );
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        if !d.is_empty() {
            let _ = write!(
                svg,
                r#"<path d="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                d.trim_end(),
                s.color
            );
        }
    }
    if xs.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">no data</text>"#,
            W / 2.0,
            H / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(9.0, 4.0), 5.0);
        assert_eq!(nice_step(0.3, 4.0), 0.1);
    }

    #[test]
    fn draws_lines_with_gaps() {
        let svg = line_chart(
            "req/s <x>",
            "req/s",
            &[1.0, 2.0, 3.0],
            &[Series {
                name: "ok",
                color: "#07c",
                values: vec![Some(1.0), None, Some(3.0)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("req/s &lt;x&gt;"));
        assert_eq!(svg.matches('M').count(), 2);
    }
}
