//! SVG charts drawn with plotters. Plotters' drawing areas are not `Send`, so everything here is
//! synchronous and is called from a blocking task, never held across an `.await`.
//!
//! Colours are the Okabe–Ito palette, which readers with the common colour-vision deficiencies
//! can tell apart; numbers and months are in Italian.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Okabe–Ito, without black (kept for text) and yellow (too pale on white for thin lines).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(204, 121, 167), // reddish purple
];

const WIDTH: u32 = 720;
const FONT: &str = "sans-serif";

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

/// Gives the SVG an accessible name and description, and lets CSS size it.
fn finish(svg: String, id: &str, title: &str, desc: &str) -> String {
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
    format!(
        "{head} role=\"img\" aria-labelledby=\"{id}-t {id}-d\" class=\"chart\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{}",
        esc(title),
        esc(desc),
        &rest[1..]
    )
}

/// The series legend, the same on every chart.
fn legend<'a, 'b: 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), Box<dyn std::error::Error>> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
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

fn label_width(labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32;
    (longest * 7 + 12).clamp(40, 260)
}

/// Horizontal bars, one per category (stacked when `series` has more than one entry).
/// `values[s][c]` is series `s` at category `c`.
/// A chart's accessible name: the SVG id prefix, title and description.
#[derive(Debug, Clone, Copy)]
pub struct Caption<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub desc: &'a str,
}

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
    let height = (60 + 26 * n as u32 + if with_legend { 40 } else { 0 }).min(2400);
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let totals: Vec<f64> = (0..categories.len())
            .map(|c| {
                values
                    .iter()
                    .map(|s| s.get(c).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect();
        let max = nice_max(totals.iter().copied().fold(0.0, f64::max));
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(30)
            .x_label_area_size(30)
            .y_label_area_size(label_width(categories))
            .build_cartesian_2d(0f64..max, (0..n as i32).into_segmented())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => categories
                    .get((n as i32 - 1 - *i) as usize)
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(6)
            .x_label_formatter(&|x| fmt_number(*x, percent))
            .label_style((FONT, 12))
            .draw()?;
        let mut base = vec![0.0; categories.len()];
        for (s, name) in series.iter().enumerate() {
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
            let drawn = chart.draw_series(bars)?;
            if with_legend {
                drawn.label(name.clone()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            }
            for (c, b) in base.iter_mut().enumerate() {
                *b += values[s].get(c).copied().unwrap_or(0.0);
            }
        }
        if !with_legend {
            // The value at the end of each bar, so that the chart reads without the table.
            chart.draw_series(categories.iter().enumerate().map(|(c, _)| {
                let v = values
                    .first()
                    .and_then(|s| s.get(c))
                    .copied()
                    .unwrap_or(0.0);
                let y = n as i32 - 1 - c as i32;
                Text::new(
                    labels
                        .and_then(|l| l.get(c).cloned())
                        .unwrap_or_else(|| fmt_number(v, percent)),
                    (v, SegmentValue::CenterOf(y)),
                    (FONT, 11).into_font().color(&BLACK),
                )
            }))?;
        }
        if with_legend {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => finish(svg, caption.id, caption.title, caption.desc),
        Err(e) => plot_error(e),
    }
}

/// Lines over months: `x_labels` are the months, `series[s].1[m]` the value of series `s` in
/// month `m` (None where the series has no row).
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
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 320)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = nice_max(
            series
                .iter()
                .flat_map(|s| s.1.iter().flatten())
                .copied()
                .fold(0.0, f64::max),
        );
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.3f64..(m as f64 - 0.7), 0f64..max)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .disable_x_mesh()
            .x_labels(m.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 0.01 || i < 0.0 {
                    return String::new();
                }
                x_labels.get(i as usize).cloned().unwrap_or_default()
            })
            .y_labels(6)
            .y_label_formatter(&|y| fmt_number(*y, percent))
            .label_style((FONT, 12))
            .draw()?;
        for (s, (name, vals)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let pts: Vec<(f64, f64)> = vals
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        if series.len() > 1 {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => finish(svg, id, title, desc),
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

/// Kaplan–Meier step curves with their 95% bands, one per group.
pub fn survival(id: &str, title: &str, desc: &str, curves: &[(String, Vec<SurvPoint>)]) -> String {
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 340)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_day = curves
            .iter()
            .flat_map(|c| c.1.iter().map(|p| p.day))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..max_day, 0f64..1.0)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("giorni dal patto")
            .y_desc("non ancora assunti")
            .x_label_formatter(&|x| fmt_number(x.round(), false))
            .y_label_formatter(&|y| fmt_number(*y, true))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .draw()?;
        for (s, (name, pts)) in curves.iter().enumerate() {
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
            chart
                .draw_series(LineSeries::new(
                    step(&|p| Some(p.survival)),
                    color.stroke_width(2),
                ))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        if curves.len() > 1 {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => finish(svg, id, title, desc),
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
}
