//! From a panel's table to its chart: which column is the category, the series and the value
//! for each kind of chart, labelled as the table labels them. [`super::charts`] draws.

use super::charts::{self, SurvPoint};
use super::choropleth::{self, Shade};
use super::dashboards::{Chart, Figure, Panel, Source};
use super::layout::cell;
use super::panels::Table;
use crate::row::{Cell, Row, col};
use crate::vocabulary::{column_label, value_label};

fn key_label(col: &str, r: &Row) -> String {
    value_label(col, r.cell(col))
}

/// Distinct values in first-seen order.
fn distinct(labels: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

fn num(r: &Row, c: &str) -> f64 {
    r.f64(c).unwrap_or(0.0)
}

/// Bars of one series: a category column and a value column, each bar labelled with its value
/// as the table shows it.
fn one_series_bars(
    id: &str,
    panel: &Panel,
    t: &Table,
    cat_col: &str,
    val_col: &str,
    percent: bool,
) -> String {
    let cats: Vec<String> = t.rows.iter().map(|r| key_label(cat_col, r)).collect();
    let vals: Vec<f64> = t.rows.iter().map(|r| num(r, val_col)).collect();
    let labels: Vec<String> = t
        .rows
        .iter()
        .map(|r| cell(val_col, r.cell(val_col), percent))
        .collect();
    charts::bars(
        charts::Caption {
            id,
            title: &panel.title,
            desc: &panel.explain,
        },
        &cats,
        &[column_label(col::VALUE).to_owned()],
        &[vals],
        percent,
        Some(&labels),
    )
}

/// The panel's SVG, from the same rows as its table.
pub fn chart_svg(id: &str, panel: &Panel, t: &Table) -> String {
    let title = &panel.title;
    let desc = &panel.explain;
    match panel.chart {
        Chart::Bar => {
            let (cat_col, val_col) = match &panel.figure {
                Figure::Source(Source::RejectedByRule) => ("rule_label", col::VALUE),
                Figure::Source(Source::RejectedByCpi) => ("cpi", col::VALUE),
                Figure::Source(Source::Batches) => ("file", "stored"),
                Figure::Kpi(_) => (panel.by[0].as_str(), col::VALUE),
            };
            one_series_bars(id, panel, t, cat_col, val_col, t.percent)
        }
        Chart::StackedBar => {
            let (a, b) = (panel.by[0].as_str(), panel.by[1].as_str());
            let cats = distinct(t.rows.iter().map(|r| key_label(a, r)));
            let series = distinct(t.rows.iter().map(|r| key_label(b, r)));
            let mut values = vec![vec![0.0; cats.len()]; series.len()];
            for r in &t.rows {
                let c = cats.iter().position(|x| *x == key_label(a, r));
                let s = series.iter().position(|x| *x == key_label(b, r));
                if let (Some(c), Some(s)) = (c, s) {
                    values[s][c] += num(r, col::VALUE);
                }
            }
            charts::bars(
                charts::Caption { id, title, desc },
                &cats,
                &series,
                &values,
                t.percent,
                None,
            )
        }
        Chart::Line => {
            let months = distinct(t.rows.iter().map(|r| key_label("month", r)));
            let series_col = panel.by.get(1).map(String::as_str);
            let series = match series_col {
                Some(c) => distinct(t.rows.iter().map(|r| key_label(c, r))),
                None => vec![title.clone()],
            };
            let mut values = vec![vec![None; months.len()]; series.len()];
            for r in &t.rows {
                let m = months.iter().position(|x| *x == key_label("month", r));
                let s = match series_col {
                    Some(c) => series.iter().position(|x| *x == key_label(c, r)),
                    None => Some(0),
                };
                if let (Some(m), Some(s)) = (m, s) {
                    values[s][m] = r.f64(col::VALUE);
                }
            }
            let series: Vec<(String, Vec<Option<f64>>)> = series.into_iter().zip(values).collect();
            charts::lines(id, title, desc, &months, &series, t.percent)
        }
        Chart::Funnel => one_series_bars(id, panel, t, col::STAGE, col::PERSONS, false),
        Chart::Survival => {
            let group_col = panel.by.first().map(String::as_str);
            let groups = match group_col {
                Some(c) => distinct(t.rows.iter().map(|r| key_label(c, r))),
                None => vec!["Tutti".to_owned()],
            };
            let curves: Vec<(String, Vec<SurvPoint>)> = groups
                .into_iter()
                .map(|g| {
                    let pts = t
                        .rows
                        .iter()
                        .filter(|r| group_col.is_none_or(|c| key_label(c, r) == g))
                        // Suppressed rows (too few at risk) are not drawn.
                        .filter_map(|r| Some((r, r.f64(col::SURVIVAL)?)))
                        .map(|(r, survival)| SurvPoint {
                            day: num(r, col::DAY),
                            survival,
                            lower: r.f64(col::LOWER),
                            upper: r.f64(col::UPPER),
                        })
                        .collect();
                    (g, pts)
                })
                .collect();
            charts::survival(id, title, desc, &curves)
        }
        Chart::FunnelPlot => {
            let by = panel.by.first().map(String::as_str).unwrap_or_default();
            let points: Vec<charts::FunnelPoint> = funnel_points(by, &t.rows)
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            charts::funnel_plot(id, title, desc, &points, &|e, level| {
                crate::query::casemix::control_limits(e, level)
            })
        }
        Chart::Map => {
            let values: Vec<(String, Shade)> = t
                .rows
                .iter()
                .filter_map(|r| {
                    let region = r.text("region")?.to_owned();
                    match r.cell(col::VALUE) {
                        Cell::Below(_) => Some((region, Shade::Withheld)),
                        c => c.as_f64().map(|v| (region, Shade::Value(v))),
                    }
                })
                .collect();
            let percent = t.percent;
            choropleth::map(id, title, desc, &values, &|v| {
                charts::fmt_number(v, percent)
            })
        }
        Chart::Tile | Chart::Table => String::new(),
    }
}

/// Where a territory lies on its funnel plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Above,
    Below,
    Within,
}

/// The funnel plot's points: the territories whose O/E and expected placements are shown (a
/// territory of too few persons is not), each with where it lies against the 95% limits.
pub fn funnel_points(by: &str, rows: &[Row]) -> Vec<(charts::FunnelPoint, Side)> {
    rows.iter()
        .filter_map(|r| {
            let (expected, oe) = (r.f64(col::EXPECTED)?, r.f64(col::VALUE)?);
            (expected > 0.0).then_some(())?;
            let (l, h) = crate::query::casemix::control_limits(expected, 0.95);
            let side = if oe > h {
                Side::Above
            } else if oe < l {
                Side::Below
            } else {
                Side::Within
            };
            let label = key_label(by, r);
            Some((
                charts::FunnelPoint {
                    label,
                    expected,
                    oe,
                },
                side,
            ))
        })
        .collect()
}
