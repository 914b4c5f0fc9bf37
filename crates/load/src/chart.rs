//! Inline SVG line charts for the HTML reports (the load report and the
//! experiment report): no script, no external file, so the page renders
//! anywhere (and in headless Chromium) as is. An [`Overlay`] adds shaded
//! bands (fault and alert spans) and vertical markers (steps) on top of
//! the lines.

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

/// A shaded span of the x axis (a fault or an alert), labelled inside
/// its bottom-left corner.
pub struct Band<'a> {
    /// Where it starts (same unit as the chart's xs).
    pub from: f64,
    /// Where it ends; `None`: still active at the right edge.
    pub to: Option<f64>,
    /// Text drawn inside the band.
    pub label: &'a str,
    /// CSS colour, drawn translucent.
    pub color: &'a str,
}

/// A vertical line at one x (a step of an experiment), labelled at its
/// top.
pub struct Marker<'a> {
    pub at: f64,
    pub label: &'a str,
    /// CSS colour of the line and its label.
    pub color: &'a str,
}

/// What [`line_chart_with`] draws besides the series: bands behind the
/// lines, markers in front of them. `Overlay::default()` draws nothing.
#[derive(Default)]
pub struct Overlay<'a> {
    pub bands: Vec<Band<'a>>,
    pub marks: Vec<Marker<'a>>,
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
    line_chart_with(title, unit, xs, series, &Overlay::default())
}

/// Estimated width in px of an overlay label (11 px sans-serif).
fn label_width(text: &str) -> f64 {
    6.5 * text.chars().count() as f64 + 4.0
}

/// Greedy rows for labels starting at `x` so that neighbours do not
/// overlap: the first row whose last label ends before `x` (at most
/// `MAX_ROWS`, then they cycle).
fn label_row(rows: &mut Vec<f64>, x: f64, width: f64) -> usize {
    const MAX_ROWS: usize = 4;
    let row = match rows.iter().position(|end| *end + 4.0 <= x) {
        Some(row) => row,
        None if rows.len() < MAX_ROWS => {
            rows.push(f64::MIN);
            rows.len() - 1
        }
        None => rows
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i),
    };
    rows[row] = x + width;
    row
}

/// [`line_chart`] with an overlay: `overlay.bands` shaded behind the
/// lines, `overlay.marks` as dashed vertical lines in front of them. The
/// x axis spans the data and every band and marker (and starts at 0
/// unless something lies before it).
pub fn line_chart_with(
    title: &str,
    unit: &str,
    xs: &[f64],
    series: &[Series<'_>],
    overlay: &Overlay<'_>,
) -> String {
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
    let scale = Scale::fit(xs, series, overlay);
    y_grid(&mut svg, &scale);
    x_ticks(&mut svg, &scale);
    let _ = write!(
        svg,
        r#"<text x="12" y="{:.1}" class="tick" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"#,
        H / 2.0,
        H / 2.0,
        esc(unit)
    );
    bands(&mut svg, &overlay.bands, &|x| scale.px(x), scale.x_max);
    series_lines(&mut svg, xs, series, &scale);
    marks(&mut svg, &overlay.marks, &|x| scale.px(x));
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

/// The axes' ranges and the y grid's step, and the mapping from data to
/// pixels.
struct Scale {
    x_min: f64,
    x_max: f64,
    y_max: f64,
    /// Distance between two y grid lines.
    y_step: f64,
}

impl Scale {
    /// The x range covers the data, the bands and the markers (and 0); the
    /// y range starts at 0 and ends on a grid line at or above the data.
    fn fit(xs: &[f64], series: &[Series<'_>], overlay: &Overlay<'_>) -> Self {
        let overlay_xs = overlay
            .bands
            .iter()
            .flat_map(|b| std::iter::once(b.from).chain(b.to))
            .chain(overlay.marks.iter().map(|m| m.at))
            .filter(|x| x.is_finite());
        let x_min = xs
            .iter()
            .copied()
            .chain(overlay_xs.clone())
            .fold(0.0, f64::min);
        let x_max = xs
            .iter()
            .copied()
            .chain(overlay_xs)
            .fold(0.0, f64::max)
            .max(x_min + 1.0);
        let y_data = series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .fold(0.0, f64::max);
        let y_step = nice_step(if y_data > 0.0 { y_data } else { 1.0 }, 4.0);
        let y_max = (y_data / y_step).ceil().max(1.0) * y_step;
        Self {
            x_min,
            x_max,
            y_max,
            y_step,
        }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x_min) / (self.x_max - self.x_min) * (W - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        H - BOTTOM - y / self.y_max * (H - TOP - BOTTOM)
    }
}

/// Horizontal grid lines with their values on the left.
fn y_grid(svg: &mut String, scale: &Scale) {
    let mut y = 0.0;
    while y <= scale.y_max + scale.y_step * 0.01 {
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{x2}" y1="{py:.1}" y2="{py:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{l}</text>"#,
            x2 = W - RIGHT,
            py = scale.py(y),
            tx = LEFT - 6.0,
            ty = scale.py(y) + 4.0,
            l = label(y)
        );
        y += scale.y_step;
    }
}

/// Labels along the x axis, in seconds, on round values.
fn x_ticks(svg: &mut String, scale: &Scale) {
    let xstep = nice_step(scale.x_max - scale.x_min, 8.0);
    let first = (scale.x_min / xstep).ceil();
    for i in 0.. {
        let x = (first + f64::from(i)) * xstep;
        if x > scale.x_max + xstep * 0.01 {
            break;
        }
        // -0.0 and rounding noise around the origin print as 0.
        let x = if (x / xstep).abs() < 1e-9 { 0.0 } else { x };
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{}s</text>"#,
            scale.px(x),
            H - BOTTOM + 16.0,
            label(x)
        );
    }
}

/// One line per series (a `None` value lifts the pen), with its legend
/// entry at the top right.
fn series_lines(svg: &mut String, xs: &[f64], series: &[Series<'_>], scale: &Scale) {
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
                        scale.px(*x),
                        scale.py(*v)
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
}

/// Overlay text: 11 px, with a white halo so it stays legible over lines.
const LABEL_STYLE: &str = r##"font-size="11" stroke="#fff" stroke-width="3" paint-order="stroke""##;

fn bands(svg: &mut String, bands: &[Band<'_>], px: &dyn Fn(f64) -> f64, x_max: f64) {
    let mut rows = Vec::new();
    for b in bands {
        if !b.from.is_finite() {
            continue;
        }
        let to = b.to.filter(|t| t.is_finite()).unwrap_or(x_max).max(b.from);
        let (x0, x1) = (px(b.from), px(to));
        let _ = write!(
            svg,
            r#"<rect class="band" x="{x0:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{c}" fill-opacity="0.14"><title>{t}</title></rect>"#,
            (x1 - x0).max(1.5),
            H - TOP - BOTTOM,
            c = esc(b.color),
            t = esc(b.label)
        );
        let row = label_row(&mut rows, x0, label_width(b.label));
        let _ = write!(
            svg,
            r#"<text class="band-label" x="{:.1}" y="{:.1}" fill="{c}" {LABEL_STYLE}>{t}</text>"#,
            x0 + 4.0,
            H - BOTTOM - 6.0 - 13.0 * row as f64,
            c = esc(b.color),
            t = esc(b.label)
        );
    }
}

fn marks(svg: &mut String, marks: &[Marker<'_>], px: &dyn Fn(f64) -> f64) {
    let mut rows = Vec::new();
    for m in marks {
        if !m.at.is_finite() {
            continue;
        }
        let x = px(m.at);
        let _ = write!(
            svg,
            r#"<line class="mark" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="{c}" stroke-width="1.5" stroke-dasharray="5 3"><title>{t}</title></line>"#,
            H - BOTTOM,
            c = esc(m.color),
            t = esc(m.label)
        );
        let width = label_width(m.label);
        // Near the right edge the label goes to the left of its line.
        let (tx, anchor, start) = if x + 3.0 + width > W - RIGHT {
            (x - 3.0, "end", x - 3.0 - width)
        } else {
            (x + 3.0, "start", x + 3.0)
        };
        let row = label_row(&mut rows, start, width);
        let _ = write!(
            svg,
            r#"<text class="mark-label" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="{c}" font-weight="bold" {LABEL_STYLE}>{t}</text>"#,
            TOP + 11.0 + 13.0 * row as f64,
            c = esc(m.color),
            t = esc(m.label)
        );
    }
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

    #[test]
    fn overlay_draws_bands_behind_and_marks_in_front() {
        let xs: Vec<f64> = (-10..=30).map(f64::from).collect();
        let overlay = Overlay {
            bands: vec![
                Band {
                    from: 5.0,
                    to: Some(20.0),
                    label: "network <block>",
                    color: "#e67e22",
                },
                Band {
                    from: 7.0,
                    to: None,
                    label: "alert & co",
                    color: "#8e44ad",
                },
            ],
            marks: vec![
                Marker {
                    at: 5.0,
                    label: "cut",
                    color: "#333",
                },
                Marker {
                    at: 20.0,
                    label: "clear \"now\"",
                    color: "#c0392b",
                },
            ],
        };
        let svg = line_chart_with(
            "errors/s",
            "1/s",
            &xs,
            &[Series {
                name: "errors",
                color: "#c0392b",
                values: xs.iter().map(|x| Some(x.max(0.0))).collect(),
            }],
            &overlay,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<rect class="band""#).count(), 2);
        assert_eq!(svg.matches(r#"<line class="mark""#).count(), 2);
        assert!(svg.contains("network &lt;block&gt;"));
        assert!(svg.contains("alert &amp; co"));
        assert!(svg.contains("clear &quot;now&quot;"));
        assert!(!svg.contains("<block>"));
        // Bands under the line, marks over it.
        let band = svg.find("class=\"band\"").expect("band");
        let line = svg.find("<path").expect("line");
        let mark = svg.find("class=\"mark\"").expect("mark");
        assert!(band < line && line < mark);
        // The axis starts before the method (negative seconds), and the
        // origin is labelled 0s, not -0s.
        assert!(svg.contains(">-10s<") && svg.contains(">-5s<"));
        assert!(svg.contains(">0s<") && !svg.contains(">-0s<"));
        // The open band reaches the right edge of the plot.
        let open = svg
            .split(r#"<rect class="band""#)
            .nth(2)
            .expect("second band");
        let attr = |name: &str| -> f64 {
            let rest = &open[open.find(&format!(" {name}=\"")).expect(name) + name.len() + 3..];
            rest[..rest.find('"').expect("quote")]
                .parse()
                .expect("number")
        };
        assert!((attr("x") + attr("width") - (W - RIGHT)).abs() < 0.2);
    }

    #[test]
    fn overlay_extends_the_axis_and_an_empty_one_changes_nothing() {
        let series = || {
            vec![Series {
                name: "ok",
                color: "#07c",
                values: vec![Some(1.0), Some(2.0)],
            }]
        };
        let xs = [0.0, 10.0];
        assert_eq!(
            line_chart("t", "u", &xs, &series()),
            line_chart_with("t", "u", &xs, &series(), &Overlay::default())
        );
        let wide = line_chart_with(
            "t",
            "u",
            &xs,
            &series(),
            &Overlay {
                bands: Vec::new(),
                marks: vec![Marker {
                    at: 40.0,
                    label: "late",
                    color: "red",
                }],
            },
        );
        assert!(wide.contains(">40s<"));
        // A label at the right edge is anchored to the left of its line.
        assert!(wide.contains(r#"text-anchor="end" fill="red""#));
    }

    #[test]
    fn labels_that_would_overlap_take_new_rows() {
        let mut rows = Vec::new();
        assert_eq!(label_row(&mut rows, 100.0, 50.0), 0);
        assert_eq!(label_row(&mut rows, 120.0, 50.0), 1);
        assert_eq!(label_row(&mut rows, 160.0, 50.0), 0);
        assert_eq!(label_row(&mut rows, 300.0, 50.0), 0);
    }
}
