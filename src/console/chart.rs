//! Charts drawn on the server as SVG: lines or bars over days, with no script and no inline
//! style (the CSP refuses `style-src 'unsafe-inline'`). Colours come from classes that the
//! stylesheet maps to its light and dark variables, so a chart follows the page's theme.
//!
//! A chart is an image with a name (`role="img"` and its `<title>`), and its values stay within
//! reach without a mouse or without sight: every point or bar is focusable and names its value
//! in a `<title>`, and a data table follows the chart.

use maud::{Markup, html};

/// The drawing's coordinate system (the SVG scales to its box; the CSS sets the box).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One line (or one bar of each group) of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    /// `series-1`…`series-6`: the stylesheet's colour for the series.
    pub class: &'a str,
    pub values: &'a [i64],
}

/// A chart over `labels` (one per day, oldest first); every series has one value per label.
pub struct Chart<'a> {
    /// Unique on the page: the ids of the title and the table hang on it.
    pub id: &'a str,
    pub title: &'a str,
    pub labels: &'a [String],
    pub series: Vec<Series<'a>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Line,
    Bars,
}

/// A line chart.
pub fn line(chart: &Chart<'_>) -> Markup {
    render(chart, Kind::Line)
}

/// A bar chart: one group of bars per label.
pub fn bars(chart: &Chart<'_>) -> Markup {
    render(chart, Kind::Bars)
}

/// The top of the value axis: the largest value rounded up to 1, 2 or 5 times a power of ten,
/// so the gridline carries a round number; 1 for an all-zero chart (a flat line at the bottom).
pub fn axis_max(max: i64) -> i64 {
    if max <= 1 {
        return 1;
    }
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if let Some(top) = step.checked_mul(m)
                && top >= max
            {
                return top;
            }
        }
        match step.checked_mul(10) {
            Some(next) => step = next,
            None => return max,
        }
    }
}

/// Where the `i`th of `n` labels sits horizontally: spread over the plot, a single one in the
/// middle.
pub fn x_of(i: usize, n: usize) -> f64 {
    let plot = WIDTH - LEFT - RIGHT;
    if n <= 1 {
        LEFT + plot / 2.0
    } else {
        LEFT + plot * i as f64 / (n - 1) as f64
    }
}

/// Where a value sits vertically, with `top` at the top of the plot and 0 on its baseline.
/// The height of a bar of zero, in the chart's units.
const MIN_BAR: f64 = 2.0;

pub fn y_of(value: i64, top: i64) -> f64 {
    let plot = HEIGHT - TOP - BOTTOM;
    let top = top.max(1) as f64;
    HEIGHT - BOTTOM - plot * (value.max(0) as f64 / top).min(1.0)
}

/// The points of a line.
pub fn coordinates(values: &[i64], top: i64) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (x_of(i, values.len()), y_of(v, top)))
        .collect()
}

fn points_attribute(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn render(chart: &Chart<'_>, kind: Kind) -> Markup {
    let title_id = format!("{}-title", chart.id);
    let n = chart.labels.len();
    let max = chart
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let top = axis_max(max);
    let baseline = HEIGHT - BOTTOM;
    html! {
        figure class="chart" {
            svg class="chart-svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
                aria-labelledby=(title_id) {
                title id=(title_id) { (chart.title) }
                g {
                    line x1=(LEFT) y1=(TOP) x2=(WIDTH - RIGHT) y2=(TOP) class="grid-line" {}
                    line x1=(LEFT) y1=(baseline) x2=(WIDTH - RIGHT) y2=(baseline) class="axis" {}
                    text x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (top) }
                    text x=(LEFT - 6.0) y=(baseline + 4.0) text-anchor="end" { "0" }
                    @if let Some(first) = chart.labels.first() {
                        text x=(LEFT) y=(HEIGHT - 8.0) text-anchor="start" { (first) }
                    }
                    @if n > 1 && let Some(last) = chart.labels.last() {
                        text x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (last) }
                    }
                }
                @match kind {
                    Kind::Line => {
                        @for series in &chart.series {
                            @let points = coordinates(series.values, top);
                            g class=(series.class) {
                                @if points.len() > 1 {
                                    polyline class="line" points=(points_attribute(&points)) {}
                                }
                                @for (i, (x, y)) in points.iter().enumerate() {
                                    circle class="point" cx=(format!("{x:.1}"))
                                        cy=(format!("{y:.1}")) r="3" tabindex="0" {
                                        title { (point_title(chart, series, i)) }
                                    }
                                }
                            }
                        }
                    }
                    Kind::Bars => {
                        @let groups = chart.series.len().max(1) as f64;
                        @let slot = (WIDTH - LEFT - RIGHT) / n.max(1) as f64;
                        @let bar = (slot * 0.8 / groups).max(1.0);
                        @for (k, series) in chart.series.iter().enumerate() {
                            g class=(series.class) {
                                @for (i, &v) in series.values.iter().enumerate() {
                                    @let x = LEFT + slot * i as f64 + slot * 0.1 + bar * k as f64;
                                    // A zero is drawn as a sliver on the axis: a bar that can
                                    // take the focus must have something to show it on.
                                    @let y = y_of(v, top).min(baseline - MIN_BAR);
                                    rect class="bar" x=(format!("{x:.1}")) y=(format!("{y:.1}"))
                                        width=(format!("{bar:.1}"))
                                        height=(format!("{:.1}", baseline - y)) tabindex="0" {
                                        title { (point_title(chart, series, i)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if n == 0 {
                p class="muted" { "No data for this range." }
            }
            figcaption class="chart-legend" {
                @for series in &chart.series {
                    span class=(format!("chart-key {}", series.class)) { (series.name) }
                }
            }
            details class="chart-data" {
                summary { (chart.title) ": the numbers" }
                div class="table-wrap" role="region" tabindex="0" aria-label=(chart.title) {
                    table {
                        caption class="visually-hidden" { (chart.title) }
                        thead {
                            tr {
                                th scope="col" { "Day" }
                                @for series in &chart.series { th scope="col" class="num" { (series.name) } }
                            }
                        }
                        tbody {
                            @for (i, label) in chart.labels.iter().enumerate() {
                                tr {
                                    th scope="row" { (label) }
                                    @for series in &chart.series {
                                        td class="num" { (series.values.get(i).copied().unwrap_or(0)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn point_title(chart: &Chart<'_>, series: &Series<'_>, i: usize) -> String {
    let label = chart.labels.get(i).map_or("", String::as_str);
    let value = series.values.get(i).copied().unwrap_or(0);
    format!("{label}, {}: {value}", series.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize) -> Vec<String> {
        (1..=n).map(|d| format!("2026-11-{d:02}")).collect()
    }

    #[test]
    fn the_axis_ends_on_a_round_number() {
        assert_eq!(axis_max(0), 1);
        assert_eq!(axis_max(1), 1);
        assert_eq!(axis_max(3), 5);
        assert_eq!(axis_max(7), 10);
        assert_eq!(axis_max(10), 10);
        assert_eq!(axis_max(11), 20);
        assert_eq!(axis_max(180), 200);
        assert_eq!(axis_max(4999), 5000);
        assert_eq!(axis_max(i64::MAX), i64::MAX);
    }

    #[test]
    fn values_map_to_coordinates_inside_the_plot() {
        let points = coordinates(&[0, 5, 10], 10);
        assert_eq!(points.len(), 3);
        // Spread from the left edge of the plot to its right edge.
        assert_eq!(points[0].0, LEFT);
        assert_eq!(points[2].0, WIDTH - RIGHT);
        assert_eq!(points[1].0, (LEFT + WIDTH - RIGHT) / 2.0);
        // 0 on the baseline, the top at the top, half way in the middle.
        assert_eq!(points[0].1, HEIGHT - BOTTOM);
        assert_eq!(points[2].1, TOP);
        assert_eq!(points[1].1, (TOP + HEIGHT - BOTTOM) / 2.0);
        // Nothing escapes the plot, whatever it is given.
        assert_eq!(y_of(-3, 10), HEIGHT - BOTTOM);
        assert_eq!(y_of(50, 10), TOP);
        assert_eq!(y_of(0, 0), HEIGHT - BOTTOM);
    }

    #[test]
    fn a_line_chart_names_itself_and_every_value() {
        let labels = labels(3);
        let views = [2, 0, 4];
        let html = line(&Chart {
            id: "views",
            title: "Views <per day>",
            labels: &labels,
            series: vec![Series {
                name: "Views",
                class: "series-1",
                values: &views,
            }],
        })
        .into_string();
        assert!(html.contains(r#"role="img""#), "{html}");
        assert!(html.contains(r#"aria-labelledby="views-title""#), "{html}");
        assert!(
            html.contains(r#"<title id="views-title">Views &lt;per day&gt;</title>"#),
            "{html}"
        );
        // The axis top is 5 for a largest value of 4; the points follow.
        let expected = points_attribute(&coordinates(&views, 5));
        assert!(html.contains(&format!(r#"points="{expected}""#)), "{html}");
        // Every point takes the focus (and so does the table's scrolling frame).
        assert_eq!(html.matches(r#"r="3" tabindex="0""#).count(), 3, "{html}");
        assert!(
            html.contains("<title>2026-11-03, Views: 4</title>"),
            "{html}"
        );
        // The table under it has the same numbers, with headers.
        assert!(html.contains(r#"<th scope="row">2026-11-02</th><td class="num">0</td>"#));
        assert!(html.contains("<details"), "{html}");
        // No inline style anywhere.
        assert!(!html.contains("style="), "{html}");
    }

    #[test]
    fn an_empty_series_draws_no_line_and_says_so() {
        let html = line(&Chart {
            id: "empty",
            title: "Nothing",
            labels: &[],
            series: vec![Series {
                name: "Views",
                class: "series-1",
                values: &[],
            }],
        })
        .into_string();
        assert!(!html.contains("<polyline"), "{html}");
        assert!(!html.contains("<circle"), "{html}");
        assert!(html.contains("No data for this range."), "{html}");
        assert!(html.contains("<tbody></tbody>"), "{html}");
    }

    #[test]
    fn one_point_sits_in_the_middle_without_a_line() {
        let labels = labels(1);
        let html = line(&Chart {
            id: "one",
            title: "One day",
            labels: &labels,
            series: vec![Series {
                name: "Views",
                class: "series-1",
                values: &[7],
            }],
        })
        .into_string();
        assert!(!html.contains("<polyline"), "{html}");
        let cx = format!(r#"cx="{:.1}""#, (LEFT + WIDTH - RIGHT) / 2.0);
        assert!(html.contains(&cx), "{html}");
        // 7 on an axis of 10.
        assert!(
            html.contains(&format!(r#"cy="{:.1}""#, y_of(7, 10))),
            "{html}"
        );
        assert!(
            html.contains("<title>2026-11-01, Views: 7</title>"),
            "{html}"
        );
    }

    #[test]
    fn bars_stand_on_the_baseline() {
        let labels = labels(2);
        let html = bars(&Chart {
            id: "saves",
            title: "Saves",
            labels: &labels,
            series: vec![Series {
                name: "Saved contacts",
                class: "series-2",
                values: &[0, 2],
            }],
        })
        .into_string();
        assert_eq!(html.matches("<rect").count(), 2, "{html}");
        // The zero bar is a sliver on the axis (something to ring when it has the focus); the
        // other reaches the top of an axis of 2.
        assert!(
            html.contains(&format!(r#"height="{MIN_BAR:.1}""#)),
            "{html}"
        );
        let full = format!(r#"height="{:.1}""#, HEIGHT - BOTTOM - TOP);
        assert!(html.contains(&full), "{html}");
        assert!(html.contains("<title>2026-11-02, Saved contacts: 2</title>"));
    }
}
