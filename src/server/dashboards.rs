//! Dashboard pages: `dashboards/*.toml`, one file per page, parsed raw and then validated against
//! the KPI catalogue, so that a typo fails at start-up with the file and the reason rather than
//! as a broken panel in front of a manager.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::query::{self, Kind};

/// The pages shipped with mirato, used when no `dashboards/` folder is given or found.
const BUILTIN: &[(&str, &str)] = &[
    (
        "panoramica.toml",
        include_str!("../../dashboards/panoramica.toml"),
    ),
    (
        "iscrizione.toml",
        include_str!("../../dashboards/iscrizione.toml"),
    ),
    (
        "orientamento.toml",
        include_str!("../../dashboards/orientamento.toml"),
    ),
    ("patto.toml", include_str!("../../dashboards/patto.toml")),
    (
        "specialistico.toml",
        include_str!("../../dashboards/specialistico.toml"),
    ),
    (
        "accompagnamento.toml",
        include_str!("../../dashboards/accompagnamento.toml"),
    ),
    (
        "incontro.toml",
        include_str!("../../dashboards/incontro.toml"),
    ),
    ("esiti.toml", include_str!("../../dashboards/esiti.toml")),
    ("datori.toml", include_str!("../../dashboards/datori.toml")),
    (
        "scadenze.toml",
        include_str!("../../dashboards/scadenze.toml"),
    ),
    (
        "qualita.toml",
        include_str!("../../dashboards/qualita.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a panel draws its figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    /// The headline value and its change from the previous period of the same length.
    Tile,
    Bar,
    StackedBar,
    /// One line per series, by month.
    Line,
    Funnel,
    Survival,
    /// Territories' observed/expected against their expected counts, with control limits
    /// (an O/E KPI by one territory breakdown).
    FunnelPlot,
    /// A choropleth of Italy's regions (a plain KPI by region).
    Map,
    Table,
}

impl Chart {
    const ALL: &'static str =
        "tile, bar, stacked_bar, line, funnel, survival, funnel_plot, map, table";
}

/// Figures that are not KPIs: what the ledger and the quarantine say about ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Ingested batches, latest first.
    Batches,
    /// Rejected rows by rule.
    RejectedByRule,
    /// Rejected rows by CPI.
    RejectedByCpi,
}

impl Source {
    const ALL: &'static str = "batches, rejected_by_rule, rejected_by_cpi";
}

/// Row order of a panel's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// By the breakdown keys, as the KPI answers.
    #[default]
    Keys,
    /// Largest value first (worst first, for backlogs).
    ValueDesc,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPage {
    title: String,
    #[serde(default)]
    description: String,
    order: i32,
    #[serde(default, rename = "panel")]
    panels: Vec<RawPanel>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPanel {
    kpi: Option<String>,
    source: Option<Source>,
    #[serde(default)]
    by: Vec<String>,
    title: String,
    explain: String,
    chart: String,
    /// Keep only rows whose column has this value, e.g. `{ overdue = "yes" }`.
    #[serde(default)]
    keep: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    order: Order,
    limit: Option<usize>,
}

/// A validated page.
#[derive(Debug, Clone)]
pub struct Page {
    /// URL name: the file stem.
    pub slug: String,
    pub title: String,
    pub description: String,
    pub order: i32,
    pub panels: Vec<Panel>,
}

/// What a panel shows: a KPI or an ingest figure.
#[derive(Debug, Clone)]
pub enum Figure {
    Kpi(&'static query::KpiDef),
    Source(Source),
}

/// A validated panel.
#[derive(Debug, Clone)]
pub struct Panel {
    pub figure: Figure,
    pub by: Vec<String>,
    pub title: String,
    pub explain: String,
    pub chart: Chart,
    pub keep: Vec<(String, String)>,
    pub order: Order,
    pub limit: Option<usize>,
}

impl Panel {
    /// The panel's id in URLs and exports.
    pub fn figure_id(&self) -> &str {
        match &self.figure {
            Figure::Kpi(d) => d.id,
            Figure::Source(Source::Batches) => "batches",
            Figure::Source(Source::RejectedByRule) => "rejected_by_rule",
            Figure::Source(Source::RejectedByCpi) => "rejected_by_cpi",
        }
    }
}

/// Loads every `*.toml` of `dir` (or the built-in pages when `dir` is `None`), validated and
/// ordered.
pub fn load(dir: Option<&Path>) -> Result<Vec<Page>, DashboardError> {
    let mut files: Vec<(String, String)> = Vec::new();
    match dir {
        None => {
            for (name, text) in BUILTIN {
                files.push(((*name).to_owned(), (*text).to_owned()));
            }
        }
        Some(dir) => {
            let io = |source| DashboardError::Io {
                path: dir.to_path_buf(),
                source,
            };
            let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            names.sort();
            for p in names {
                let text = std::fs::read_to_string(&p).map_err(|source| DashboardError::Io {
                    path: p.clone(),
                    source,
                })?;
                files.push((p.display().to_string(), text));
            }
        }
    }
    let mut pages = Vec::new();
    for (file, text) in files {
        pages.push(parse_page(&file, &text)?);
    }
    if pages.is_empty() {
        return Err(DashboardError::Invalid {
            file: dir.map(|d| d.display().to_string()).unwrap_or_default(),
            reason: "no *.toml page in the folder".into(),
        });
    }
    pages.sort_by(|a, b| (a.order, &a.slug).cmp(&(b.order, &b.slug)));
    for w in pages.windows(2) {
        if w[0].slug == w[1].slug {
            return Err(DashboardError::Invalid {
                file: w[1].slug.clone(),
                reason: "two pages with the same file name".into(),
            });
        }
    }
    Ok(pages)
}

/// Parses and validates one page file.
pub fn parse_page(file: &str, text: &str) -> Result<Page, DashboardError> {
    let invalid = |reason: String| DashboardError::Invalid {
        file: file.to_owned(),
        reason,
    };
    let raw: RawPage = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let slug = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file)
        .to_owned();
    if slug.is_empty()
        || !slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(invalid(format!(
            "the file name '{slug}' must be lowercase letters, digits, '-' or '_' (it is the page's URL)"
        )));
    }
    if raw.panels.is_empty() {
        return Err(invalid("the page has no [[panel]]".into()));
    }
    let mut panels = Vec::new();
    for (i, p) in raw.panels.into_iter().enumerate() {
        let n = i + 1;
        let at = |reason: String| invalid(format!("panel {n} ('{}'): {reason}", p.title));
        let chart: Chart =
            Chart::deserialize(toml::Value::String(p.chart.clone())).map_err(|_| {
                at(format!(
                    "unknown chart kind '{}'; use one of: {}",
                    p.chart,
                    Chart::ALL
                ))
            })?;
        if p.title.trim().is_empty() || p.explain.trim().is_empty() {
            return Err(at("a panel needs a title and a one-line explanation".into()));
        }
        let figure = match (&p.kpi, p.source) {
            (Some(id), None) => Figure::Kpi(query::find(id).ok_or_else(|| {
                at(format!(
                    "unknown KPI '{id}'; `mirato kpi --list` shows them all"
                ))
            })?),
            (None, Some(s)) => Figure::Source(s),
            _ => {
                return Err(at(format!(
                    "name exactly one of `kpi` (a KPI id) or `source` ({})",
                    Source::ALL
                )));
            }
        };
        if p.by.len() > 2 {
            return Err(at("at most two breakdowns".into()));
        }
        match &figure {
            Figure::Kpi(def) => {
                let allowed = def.allowed_dims();
                for b in &p.by {
                    if !allowed.contains(&b.as_str()) {
                        return Err(at(format!(
                            "KPI {} has no breakdown '{b}'; allowed: {}",
                            def.id,
                            allowed.join(", ")
                        )));
                    }
                }
                check_chart(def, chart, &p.by).map_err(at)?;
                for k in p.keep.keys() {
                    if !p.by.contains(k) {
                        return Err(at(format!(
                            "`keep` names '{k}', which is not one of the panel's breakdowns"
                        )));
                    }
                }
            }
            Figure::Source(_) => {
                if !p.by.is_empty() || !p.keep.is_empty() {
                    return Err(at("an ingest source takes no `by` or `keep`".into()));
                }
                if !matches!(chart, Chart::Table | Chart::Bar) {
                    return Err(at("an ingest source is drawn as a table or a bar".into()));
                }
            }
        }
        panels.push(Panel {
            figure,
            by: p.by,
            title: p.title,
            explain: p.explain,
            chart,
            keep: p.keep.into_iter().collect(),
            order: p.order,
            limit: p.limit,
        });
    }
    Ok(Page {
        slug,
        title: raw.title,
        description: raw.description,
        order: raw.order,
        panels,
    })
}

/// Whether a chart kind can draw this KPI with these breakdowns.
fn check_chart(def: &query::KpiDef, chart: Chart, by: &[String]) -> Result<(), String> {
    let kind = def.kind;
    let plain = !matches!(kind, Kind::Survival | Kind::Funnel | Kind::Oe);
    match chart {
        Chart::Tile if !plain || !by.is_empty() => {
            Err("a tile shows one value: a KPI that is not a curve or funnel, no breakdown".into())
        }
        Chart::Bar if !plain || by.len() != 1 => {
            Err("a bar chart needs a plain KPI and exactly one breakdown".into())
        }
        Chart::StackedBar if !plain || by.len() != 2 => {
            Err("a stacked bar chart needs a plain KPI and two breakdowns".into())
        }
        Chart::Line if !plain || by.first().map(String::as_str) != Some("month") => Err(
            "a line chart needs a plain KPI broken down by month first (then optionally one more)"
                .into(),
        ),
        Chart::Funnel if kind != Kind::Funnel || !by.is_empty() => {
            Err("a funnel chart needs the funnel KPI without breakdown".into())
        }
        Chart::Survival if kind != Kind::Survival || by.len() > 1 => {
            Err("a survival chart needs the survival KPI and at most one breakdown".into())
        }
        Chart::Map if !plain || by != ["region"] => Err(
            "a map needs a plain KPI broken down by region alone (the map has no provinces)".into(),
        ),
        Chart::FunnelPlot if kind != Kind::Oe || by.len() != 1 => {
            Err("a funnel plot needs an observed/expected KPI and one territory breakdown".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_pages_are_valid() {
        let pages = load(None).expect("built-in pages");
        assert!(pages.len() >= 10);
        assert_eq!(pages[0].slug, "panoramica");
    }

    /// Every KPI of the catalogue has a home on a built-in page: a figure nobody can see is a
    /// figure nobody checks.
    #[test]
    fn every_kpi_is_on_a_page() {
        let pages = load(None).expect("built-in pages");
        for def in query::catalog() {
            let shown = pages
                .iter()
                .flat_map(|p| &p.panels)
                .any(|panel| matches!(&panel.figure, Figure::Kpi(d) if d.id == def.id));
            assert!(shown, "{} is on no page of dashboards/", def.id);
        }
    }

    fn err(text: &str) -> String {
        parse_page("dashboards/x.toml", text)
            .unwrap_err()
            .to_string()
    }

    const HEAD: &str = "title = \"X\"\norder = 1\n[[panel]]\ntitle = \"T\"\nexplain = \"E\"\n";

    #[test]
    fn unknown_kpi_names_file_and_reason() {
        let e = err(&format!("{HEAD}kpi = \"nope\"\nchart = \"table\"\n"));
        assert!(e.starts_with("dashboards/x.toml: panel 1"), "{e}");
        assert!(e.contains("unknown KPI 'nope'"), "{e}");
    }

    #[test]
    fn unknown_breakdown_and_kind() {
        let e = err(&format!(
            "{HEAD}kpi = \"hires\"\nby = [\"colour\"]\nchart = \"bar\"\n"
        ));
        assert!(e.contains("no breakdown 'colour'"), "{e}");
        let e = err(&format!("{HEAD}kpi = \"hires\"\nchart = \"pie\"\n"));
        assert!(e.contains("unknown chart kind 'pie'"), "{e}");
        let e = err(&format!(
            "{HEAD}kpi = \"hires\"\nby = [\"region\"]\nchart = \"line\"\n"
        ));
        assert!(e.contains("by month"), "{e}");
        let e = err(&format!(
            "{HEAD}kpi = \"hires\"\nchart = \"table\"\nsize = 3\n"
        ));
        assert!(e.contains("unknown field"), "{e}");
    }
}
