//! SVG charts drawn with plotters. Plotters' drawing areas are not `Send`, so everything here is
//! synchronous and is called from a blocking task, never held across an `.await`.
//!
//! Colours are the Okabe–Ito palette, which readers with the common colour-vision deficiencies
//! can tell apart; numbers and months are in Italian. Every chart is drawn at one width that no
//! column of the page is narrower than, so that its text is never shown under 12px, and a legend
//! has a band of its own above the plot, where it covers no bar and no line.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Okabe–Ito, without black (kept for text) and yellow (too pale on white for thin lines).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(204, 121, 167), // reddish purple
];

/// Every chart's width in SVG units. style.css scales the SVG to its column: the narrowest
/// column of the grid (`.panels`, 560px less the panel's padding) is 532px, so a chart is never
/// scaled down, and style.css stops it at 1.5 times (780px) on a wide single column.
const WIDTH: u32 = 520;
const FONT: &str = "sans-serif";
/// Every text's size as plotters takes it. Its SVG backend writes `font-size` as size / 1.24, so
/// 15 is 12.1 units: at least 12px on screen at every layout width, at most 18px.
const TEXT: u32 = 15;
/// The width of a character of that text, for laying labels out: 0.55 of 12.1 units, a little
/// over the 5.0–6.1 that Chromium's sans-serif measures for Italian words and numbers.
const CHAR_W: f64 = 6.6;

/// A number for people in the offices: `1.234`, `12,5`, `0,87`, or a percentage `87,0%`.
pub fn fmt_number(x: f64, percent: bool) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    if percent {
        return format!("{}%", fmt_decimal(x * 100.0, 1));
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return group(&format!("{}", x as i64));
    }
    fmt_decimal(x, if x.abs() < 10.0 { 2 } else { 1 })
}

/// A number with `digits` decimals, Italian style.
pub fn fmt_decimal(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if frac.is_empty() {
        group(int)
    } else {
        format!("{},{frac}", group(int))
    }
}

fn group(int: &str) -> String {
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// Gives the SVG an accessible name and description, and lets CSS size it; the legend, when
/// there is one, goes in last.
fn finish(svg: String, id: &str, title: &str, desc: &str, legend: Option<String>) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let Some(end) = svg.find('>') else {
        return svg;
    };
    let (head, rest) = svg.split_at(end);
    let mut body = rest[1..].trim_end();
    let legend = legend.unwrap_or_default();
    if !legend.is_empty() {
        body = body.strip_suffix("</svg>").unwrap_or(body);
    }
    format!(
        "{head} role=\"img\" aria-labelledby=\"{id}-t {id}-d\" class=\"chart\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{body}{legend}{}\n",
        esc(title),
        esc(desc),
        if legend.is_empty() { "" } else { "</svg>" },
    )
}

/// How a legend entry shows its series: a block for bars, a stroke for lines.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Block(RGBColor),
    Line(RGBColor),
}

/// The height of a row of the legend, and where its entries start.
const LEGEND_ROW: i32 = 22;
const LEGEND_LEFT: i32 = 10;

/// An entry's width: swatch, gap, text, space before the next.
fn entry_width(name: &str) -> i32 {
    20 + text_width(name) + 18
}

/// Where each entry of a legend goes when the entries flow in rows across the chart, as
/// (x, row), and the height they take.
fn legend_places(names: &[&str]) -> (Vec<(i32, i32)>, u32) {
    let mut places = Vec::with_capacity(names.len());
    let (mut x, mut row) = (LEGEND_LEFT, 0);
    for n in names {
        let w = entry_width(n);
        if x > LEGEND_LEFT && x + w > WIDTH as i32 {
            row += 1;
            x = LEGEND_LEFT;
        }
        places.push((x, row));
        x += w;
    }
    let height = if names.is_empty() {
        0
    } else {
        (row + 1) * LEGEND_ROW + 6
    };
    (places, height as u32)
}

/// The legend as an SVG group (`<g class="legend">`) for the top of the chart, in a band of its
/// own above the plot so that it covers no bar and no line, and its height.
fn legend(entries: &[(String, Swatch)]) -> Result<(String, u32), Box<dyn std::error::Error>> {
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let (places, height) = legend_places(&names);
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (WIDTH, height.max(1))).into_drawing_area();
        let style = TextStyle::from((FONT, TEXT).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for ((name, swatch), (x, row)) in entries.iter().zip(places) {
            let y = row * LEGEND_ROW + LEGEND_ROW / 2 + 3;
            match *swatch {
                Swatch::Block(c) => {
                    area.draw(&Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()))?
                }
                Swatch::Line(c) => {
                    area.draw(&PathElement::new(
                        vec![(x, y), (x + 14, y)],
                        c.stroke_width(3),
                    ))?;
                }
            }
            area.draw(&Text::new(name.clone(), (x + 20, y), style.clone()))?;
        }
        area.present()?;
    }
    // The backend's elements, without its own <svg> element around them.
    let inner = svg
        .split_once('>')
        .map_or("", |(_, rest)| rest)
        .trim_end()
        .strip_suffix("</svg>")
        .unwrap_or_default();
    Ok((format!("<g class=\"legend\">{inner}</g>"), height))
}

fn plot_error<E: std::fmt::Debug>(e: E) -> String {
    format!("<p class=\"chart-error\">Grafico non disponibile ({e:?}).</p>")
}

fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    max * 1.08
}

/// A text's width on the chart, from its characters.
fn text_width(s: &str) -> i32 {
    (s.chars().count() as f64 * CHAR_W).ceil() as i32
}

/// The widest the category labels of a bar chart may be (39 characters): the bars keep at
/// least 200 units.
const MAX_LABEL_W: i32 = 260;

/// A label cut to `width`, with an ellipsis (the table under the chart has it whole).
fn fit(label: &str, width: i32) -> String {
    if text_width(label) <= width {
        return label.to_owned();
    }
    let keep = ((width as f64 / CHAR_W) as usize).saturating_sub(1);
    let mut out: String = label.chars().take(keep).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// How many ticks of `width` fit in `room`, at least two.
fn ticks(room: i32, width: i32) -> usize {
    (room / width.max(1)).max(2) as usize
}

/// A chart's accessible name: the SVG id prefix, title and description.
#[derive(Debug, Clone, Copy)]
pub struct Caption<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
}

/// Horizontal bars, one per category (stacked when `series` has more than one entry, with a
/// legend above). `values[s][c]` is series `s` at category `c`; a single series has each bar's
/// value at its end, as `labels` gives it or as a number.
pub fn bars(
    caption: Caption<'_>,
    categories: &[String],
    series: &[String],
    values: &[Vec<f64>],
    percent: bool,
    labels: Option<&[String]>,
) -> String {
    let n = categories.len().max(1);
    let with_legend = series.len() > 1;
    let entries: Vec<(String, Swatch)> = series
        .iter()
        .enumerate()
        .map(|(s, name)| (name.clone(), Swatch::Block(PALETTE[s % PALETTE.len()])))
        .collect();
    let mut svg = String::new();
    let drawn = (|| -> Result<Option<String>, Box<dyn std::error::Error>> {
        let (legend, legend_h) = if with_legend {
            let (g, h) = legend(&entries)?;
            (Some(g), h)
        } else {
            (None, 0)
        };
        let plot_h = (50 + 24 * n as u32).min(2400);
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, legend_h + plot_h)).into_drawing_area();
        root.fill(&WHITE)?;
        let (_, plot) = root.split_vertically(legend_h);
        let totals: Vec<f64> = (0..categories.len())
            .map(|c| {
                values
                    .iter()
                    .map(|s| s.get(c).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect();
        let max = nice_max(totals.iter().copied().fold(0.0, f64::max));
        let shown: Vec<String> = categories.iter().map(|c| fit(c, MAX_LABEL_W)).collect();
        let label_w = shown.iter().map(|l| text_width(l)).max().unwrap_or(30) + 14;
        let end_labels: Vec<String> = (0..categories.len())
            .map(|c| {
                labels.and_then(|l| l.get(c).cloned()).unwrap_or_else(|| {
                    let v = values.first().and_then(|s| s.get(c)).copied();
                    fmt_number(v.unwrap_or(0.0), percent)
                })
            })
            .collect();
        // Room on the right for the value at the end of the longest bar.
        let right = if with_legend {
            24
        } else {
            end_labels.iter().map(|l| text_width(l)).max().unwrap_or(0) + 12
        };
        let tick_w = text_width(&fmt_number(
            if percent { max } else { max.round() },
            percent,
        )) + 16;
        let room = WIDTH as i32 - label_w - right - 10;
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .margin_right(right)
            .x_label_area_size(30)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..max, (0..n as i32).into_segmented())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => shown
                    .get((n as i32 - 1 - *i) as usize)
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(ticks(room, tick_w).min(6))
            .x_label_formatter(&|x| fmt_number(*x, percent))
            .label_style((FONT, TEXT))
            .draw()?;
        let mut base = vec![0.0; categories.len()];
        for (s, _) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let bars = (0..categories.len()).map(|c| {
                let v = values[s].get(c).copied().unwrap_or(0.0);
                let y = n as i32 - 1 - c as i32;
                let mut r = Rectangle::new(
                    [
                        (base[c], SegmentValue::Exact(y)),
                        (base[c] + v, SegmentValue::Exact(y + 1)),
                    ],
                    color.filled(),
                );
                r.set_margin(4, 4, 0, 0);
                r
            });
            chart.draw_series(bars)?;
            for (c, b) in base.iter_mut().enumerate() {
                *b += values[s].get(c).copied().unwrap_or(0.0);
            }
        }
        if !with_legend {
            // The value at the end of each bar, so that the chart reads without the table.
            let style = TextStyle::from((FONT, TEXT).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series(end_labels.iter().enumerate().map(|(c, label)| {
                let v = values
                    .first()
                    .and_then(|s| s.get(c))
                    .copied()
                    .unwrap_or(0.0);
                let y = n as i32 - 1 - c as i32;
                EmptyElement::at((v, SegmentValue::CenterOf(y)))
                    + Text::new(label.clone(), (4, 0), style.clone())
            }))?;
        }
        root.present()?;
        Ok(legend)
    })();
    match drawn {
        Ok(legend) => finish(svg, caption.id, caption.title, caption.desc, legend),
        Err(e) => plot_error(e),
    }
}

/// The month labels of a line chart: every `step`-th month, so that they do not overlap.
fn month_step(x_labels: &[String], room: i32) -> usize {
    let widest = x_labels.iter().map(|l| text_width(l)).max().unwrap_or(0) + 14;
    x_labels.len().div_ceil(ticks(room, widest)).max(1)
}

/// Lines over months: `x_labels` are the months, `series[s].1[m]` the value of series `s` in
/// month `m` (None where the series has no row). More than one series gets a legend above.
pub fn lines(
    id: &str,
    title: &str,
    desc: &str,
    x_labels: &[String],
    series: &[(String, Vec<Option<f64>>)],
    percent: bool,
) -> String {
    let m = x_labels.len().max(1);
    let mut svg = String::new();
    let drawn = (|| -> Result<Option<String>, Box<dyn std::error::Error>> {
        let (legend, legend_h) = line_legend(series.iter().map(|(name, _)| name))?;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, legend_h + 300)).into_drawing_area();
        root.fill(&WHITE)?;
        let (_, plot) = root.split_vertically(legend_h);
        let max = nice_max(
            series
                .iter()
                .flat_map(|s| s.1.iter().flatten())
                .copied()
                .fold(0.0, f64::max),
        );
        let y_area = text_width(&fmt_number(
            if percent { max } else { max.round() },
            percent,
        )) + 16;
        let step = month_step(x_labels, WIDTH as i32 - y_area - 36);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(32)
            .y_label_area_size(y_area)
            .build_cartesian_2d(-0.3f64..(m as f64 - 0.7), 0f64..max)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .disable_x_mesh()
            .x_labels(m)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 0.01 || i < 0.0 || !(i as usize).is_multiple_of(step) {
                    return String::new();
                }
                x_labels.get(i as usize).cloned().unwrap_or_default()
            })
            .y_labels(6)
            .y_label_formatter(&|y| fmt_number(*y, percent))
            .label_style((FONT, TEXT))
            .draw()?;
        for (s, (_, vals)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let pts: Vec<(f64, f64)> = vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
                .collect();
            chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        root.present()?;
        Ok(legend)
    })();
    match drawn {
        Ok(legend) => finish(svg, id, title, desc, legend),
        Err(e) => plot_error(e),
    }
}

/// One point of a survival curve.
#[derive(Debug, Clone, Copy)]
pub struct SurvPoint {
    pub day: f64,
    pub survival: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// The legend band of a chart of lines, one entry per series in palette order; none (and no
/// height) for a single line.
fn line_legend<'a>(
    names: impl ExactSizeIterator<Item = &'a String>,
) -> Result<(Option<String>, u32), Box<dyn std::error::Error>> {
    if names.len() < 2 {
        return Ok((None, 0));
    }
    let entries: Vec<(String, Swatch)> = names
        .enumerate()
        .map(|(s, name)| (name.clone(), Swatch::Line(PALETTE[s % PALETTE.len()])))
        .collect();
    let (g, h) = legend(&entries)?;
    Ok((Some(g), h))
}

/// Kaplan–Meier step curves with their 95% bands, one per group (a legend above when more than
/// one).
pub fn survival(id: &str, title: &str, desc: &str, curves: &[(String, Vec<SurvPoint>)]) -> String {
    let mut svg = String::new();
    let drawn = (|| -> Result<Option<String>, Box<dyn std::error::Error>> {
        let (legend, legend_h) = line_legend(curves.iter().map(|(name, _)| name))?;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, legend_h + 320)).into_drawing_area();
        root.fill(&WHITE)?;
        let (_, plot) = root.split_vertically(legend_h);
        let max_day = curves
            .iter()
            .flat_map(|c| c.1.iter().map(|p| p.day))
            .fold(1.0, f64::max);
        let day_w = text_width(&fmt_number(max_day.round(), false)) + 24;
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(46)
            .y_label_area_size(76)
            .build_cartesian_2d(0f64..max_day, 0f64..1.0)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("giorni dal patto")
            .y_desc("non ancora assunti")
            .x_labels(ticks(WIDTH as i32 - 112, day_w).min(10))
            .x_label_formatter(&|x| fmt_number(x.round(), false))
            .y_label_formatter(&|y| fmt_number(*y, true))
            .label_style((FONT, TEXT))
            .axis_desc_style((FONT, TEXT))
            .draw()?;
        for (s, (_, pts)) in curves.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            // Steps: the curve holds its value until the next event day.
            let step = |f: &dyn Fn(&SurvPoint) -> Option<f64>| -> Vec<(f64, f64)> {
                let mut out = Vec::new();
                let mut prev: Option<f64> = None;
                for p in pts {
                    let Some(v) = f(p) else { continue };
                    if let Some(pv) = prev {
                        out.push((p.day, pv));
                    }
                    out.push((p.day, v));
                    prev = Some(v);
                }
                if let (Some(pv), Some(last)) = (prev, pts.last()) {
                    out.push((last.day.max(max_day), pv));
                }
                out
            };
            let upper = step(&|p| p.upper);
            let lower = step(&|p| p.lower);
            if !upper.is_empty() && !lower.is_empty() {
                let mut band = upper.clone();
                band.extend(lower.iter().rev());
                chart.draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.18).filled(),
                )))?;
            }
            chart.draw_series(LineSeries::new(
                step(&|p| Some(p.survival)),
                color.stroke_width(2),
            ))?;
        }
        root.present()?;
        Ok(legend)
    })();
    match drawn {
        Ok(legend) => finish(svg, id, title, desc, legend),
        Err(e) => plot_error(e),
    }
}

/// A territory on a funnel plot: its name, expected placements (the x) and O/E (the y).
#[derive(Debug, Clone)]
pub struct FunnelPoint {
    pub label: String,
    pub expected: f64,
    pub oe: f64,
}

/// A funnel plot (Spiegelhalter 2005): each territory's O/E against its expected placements,
/// with the 95% and 99.8% control limits drawn as curves around 1: the O/E beyond which a
/// territory's exact interval leaves out 1. `limits(e, level)` gives them (see
/// `query::casemix::control_limits`).
/// Points outside the 95% curves are drawn filled in vermillion (above) or blue (below),
/// the others hollow in grey.
pub fn funnel_plot(
    id: &str,
    title: &str,
    desc: &str,
    points: &[FunnelPoint],
    limits: &dyn Fn(f64, f64) -> (f64, f64),
) -> String {
    let mut svg = String::new();
    let grey = RGBColor(110, 110, 110);
    let (above, below) = (PALETTE[3], PALETTE[0]);
    let drawn = (|| -> Result<Option<String>, Box<dyn std::error::Error>> {
        let entries = vec![
            ("limiti al 95%".to_owned(), Swatch::Line(grey)),
            ("limiti al 99,8%".to_owned(), Swatch::Line(BLACK)),
            ("sopra l'atteso".to_owned(), Swatch::Block(above)),
            ("sotto l'atteso".to_owned(), Swatch::Block(below)),
        ];
        let (legend, legend_h) = legend(&entries)?;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, legend_h + 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let (_, plot) = root.split_vertically(legend_h);
        let max_e = points.iter().map(|p| p.expected).fold(1.0, f64::max) * 1.05;
        // The curves start where a territory expects one placement; the y axis holds every
        // point and the 99.8% curve from there on, up to 4 (beyond: drawn at the edge).
        let start = (max_e / 200.0).clamp(0.5, 1.0);
        let top = points
            .iter()
            .map(|p| p.oe)
            .chain([limits(start.max(2.0), 0.998).1])
            .fold(1.5, f64::max)
            .min(4.0);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(46)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..max_e, 0f64..top)?;
        // Whole numbers, or one decimal where a few placements are expected in all.
        let x_label = |x: &f64| {
            if max_e < 10.0 {
                fmt_decimal(*x, 1)
            } else {
                fmt_number(x.round(), false)
            }
        };
        let x_w = text_width(&x_label(&max_e)) + 24;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("inserimenti attesi")
            .y_desc("osservati / attesi")
            .x_labels(ticks(WIDTH as i32 - 96, x_w).min(8))
            .x_label_formatter(&x_label)
            .y_label_formatter(&|y| fmt_decimal(*y, 1))
            .label_style((FONT, TEXT))
            .axis_desc_style((FONT, TEXT))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(0.0, 1.0), (max_e, 1.0)],
            grey.stroke_width(1),
        ))?;
        let steps = 160;
        for (level, color, width) in [(0.95, grey, 2), (0.998, BLACK, 1)] {
            let xs: Vec<f64> = (0..=steps)
                .map(|i| start * (max_e / start).powf(f64::from(i) / f64::from(steps)))
                .collect();
            type Curve = Vec<(f64, f64)>;
            let (lo, hi): (Curve, Curve) = xs
                .iter()
                .map(|&e| {
                    let (l, h) = limits(e, level);
                    ((e, l.clamp(0.0, top)), (e, h.clamp(0.0, top)))
                })
                .unzip();
            chart.draw_series(LineSeries::new(lo, color.stroke_width(width)))?;
            chart.draw_series(LineSeries::new(hi, color.stroke_width(width)))?;
        }
        for p in points {
            let (l, h) = limits(p.expected, 0.95);
            let at = (p.expected, p.oe.min(top));
            let style = if p.oe > h {
                above.filled()
            } else if p.oe < l {
                below.filled()
            } else {
                grey.stroke_width(2)
            };
            chart.draw_series(std::iter::once(Circle::new(at, 5, style)))?;
        }
        root.present()?;
        Ok(Some(legend))
    })();
    match drawn {
        Ok(legend) => finish(svg, id, title, desc, legend),
        Err(e) => plot_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn italian_numbers() {
        assert_eq!(fmt_number(1234567.0, false), "1.234.567");
        assert_eq!(fmt_number(0.8712, true), "87,1%");
        assert_eq!(fmt_number(12.345, false), "12,3");
        assert_eq!(fmt_number(-1234.0, false), "-1.234");
        assert_eq!(fmt_number(f64::NAN, false), "–");
    }

    /// Three territories: one inside the funnel, one above, one below; each drawn as it lies.
    #[test]
    fn a_funnel_plot_marks_the_points_outside_its_limits() {
        let pts = [
            FunnelPoint {
                label: "A".into(),
                expected: 100.0,
                oe: 1.02,
            },
            FunnelPoint {
                label: "B".into(),
                expected: 100.0,
                oe: 1.6,
            },
            FunnelPoint {
                label: "C".into(),
                expected: 50.0,
                oe: 0.4,
            },
        ];
        let limits = |e: f64, level: f64| crate::query::casemix::control_limits(e, level);
        let svg = funnel_plot("f1", "Imbuto", "Descrizione", &pts, &limits);
        assert!(svg.contains("role=\"img\""), "{svg}");
        assert!(svg.contains("<title id=\"f1-t\">Imbuto</title>"));
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
        let fill = |c: RGBColor| format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        assert_eq!(
            svg.matches(&fill(PALETTE[3])).count(),
            2,
            "above: the point and its key"
        );
        assert_eq!(
            svg.matches(&fill(PALETTE[0])).count(),
            2,
            "below: the point and its key"
        );
        assert!(svg.contains("sopra l&apos;atteso") || svg.contains("sopra l'atteso"));
    }

    #[test]
    fn charts_are_accessible_svg() {
        let cats = vec!["Lazio".to_owned(), "Lombardia".to_owned()];
        let svg = bars(
            Caption {
                id: "p1",
                title: "Titolo <x>",
                desc: "Descrizione",
            },
            &cats,
            &["v".into()],
            &[vec![3.0, 5.0]],
            false,
            Some(&["<5".to_owned(), "5".to_owned()]),
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("&lt;5"), "{svg}");
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"p1-t\">Titolo &lt;x&gt;</title>"));
        assert!(svg.contains("Lombardia"));
        let svg = lines(
            "p2",
            "t",
            "d",
            &["gen 2025".into(), "feb 2025".into()],
            &[
                ("a".into(), vec![Some(1.0), None]),
                ("b".into(), vec![Some(2.0), Some(1.0)]),
            ],
            false,
        );
        assert!(svg.contains("gen 2025"));
        let pts = vec![
            SurvPoint {
                day: 0.0,
                survival: 1.0,
                lower: Some(1.0),
                upper: Some(1.0),
            },
            SurvPoint {
                day: 30.0,
                survival: 0.5,
                lower: Some(0.3),
                upper: Some(0.7),
            },
        ];
        let svg = survival("p3", "t", "d", &[("Tutti".into(), pts)]);
        assert!(svg.contains("<polygon") || svg.contains("<path"), "{svg}");
    }

    /// The numbers of an attribute across the SVG, e.g. every `font-size`.
    fn attrs(svg: &str, name: &str) -> Vec<f64> {
        let key = format!(" {name}=\"");
        svg.split(key.as_str())
            .skip(1)
            .filter_map(|rest| rest.split('"').next()?.parse().ok())
            .collect()
    }

    /// Text is never under 12 units (style.css never shows a chart under its width), and the
    /// legend has a band of its own above the plot: no bar starts above the band's bottom.
    #[test]
    fn text_is_readable_and_the_legend_covers_no_bar() {
        let cats: Vec<String> = ["Tempo determinato", "Tempo indeterminato", "Altro"]
            .map(String::from)
            .into();
        let series: Vec<String> = ["Avviamento nominativo", "Avviamento numerico", "Altro"]
            .map(String::from)
            .into();
        let values = vec![vec![200.0, 50.0, 3.0]; 3];
        let caption = Caption {
            id: "p",
            title: "t",
            desc: "d",
        };
        let svg = bars(caption, &cats, &series, &values, false, None);
        let sizes = attrs(&svg, "font-size");
        assert!(
            !sizes.is_empty() && sizes.iter().all(|s| *s >= 12.0),
            "{sizes:?}"
        );
        let (start, end) = (
            svg.find("<g class=\"legend\">").unwrap(),
            svg.rfind("</g>").unwrap(),
        );
        let names: Vec<&str> = series.iter().map(String::as_str).collect();
        let band = legend_places(&names).1 as f64;
        assert!(band >= 22.0);
        let plot = format!("{}{}", &svg[..start], &svg[end..]);
        let bar_tops: Vec<f64> = plot
            .split("<rect")
            .skip(1)
            .filter(|r| r.contains("fill=\"#0072B2\"") || r.contains("fill=\"#E69F00\""))
            .flat_map(|r| attrs(r.split('>').next().unwrap_or(""), "y"))
            .collect();
        assert!(
            !bar_tops.is_empty() && bar_tops.iter().all(|y| *y >= band),
            "{bar_tops:?} {band}"
        );
        assert!(svg[start..end].contains("Avviamento numerico"));

        let months: Vec<String> = (1..=24).map(|m| format!("mese {m}")).collect();
        let svg = lines(
            "l",
            "t",
            "d",
            &months,
            &[
                ("a".into(), vec![Some(1.0); 24]),
                ("b".into(), vec![Some(2.0); 24]),
            ],
            true,
        );
        assert!(attrs(&svg, "font-size").iter().all(|s| *s >= 12.0));
        assert!(svg.contains("<g class=\"legend\">"));
        // 24 month labels do not fit side by side: every other one, or fewer, is written.
        assert!(
            svg.contains("mese 1\n") && !svg.contains("mese 2\n"),
            "{svg}"
        );
        assert_eq!(
            fit("Rifiuto di un'offerta congrua e altro ancora", 100),
            "Rifiuto di un'…"
        );
    }
}
