//! The KPI catalogue: one SQL file per KPI in `queries/`, each opening with a header that says
//! what the rows mean. Parsed once from the embedded files.

use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/queries.rs"));

/// How a KPI's rows are aggregated into its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One row per counted event: `value` = rows.
    Count,
    /// `value` = distinct `person_id`.
    CountDistinct,
    /// `value` = sum of `x`.
    Sum,
    /// One row per denominator unit with `num` 0/1: `numerator`, `denominator`, `value`.
    Rate,
    /// `value` = median of `x`, `n` = cases.
    Median,
    /// `value` = mean of `x`, `n` = cases.
    Mean,
    /// One row per unit in the stock at `to`: `value` = rows.
    Stock,
    /// One row per cohort member with `duration` and `event`: a Kaplan–Meier curve.
    Survival,
    /// One row per spell with 0/1 stage flags: rows `stage`, `persons`, `share_of_accepted`.
    Funnel,
    /// Rows as a rate's (`num` 0/1 per cohort entry): per territory, placements observed
    /// against those expected from the case mix (see `query::casemix`).
    Oe,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "count" => Kind::Count,
            "count_distinct" => Kind::CountDistinct,
            "sum" => Kind::Sum,
            "rate" => Kind::Rate,
            "median" => Kind::Median,
            "mean" => Kind::Mean,
            "stock" => Kind::Stock,
            "survival" => Kind::Survival,
            "funnel" => Kind::Funnel,
            "oe" => Kind::Oe,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Count => "count",
            Kind::CountDistinct => "count_distinct",
            Kind::Sum => "sum",
            Kind::Rate => "rate",
            Kind::Median => "median",
            Kind::Mean => "mean",
            Kind::Stock => "stock",
            Kind::Survival => "survival",
            Kind::Funnel => "funnel",
            Kind::Oe => "oe",
        }
    }
}

/// The funnel's stages, in order, with the 0/1 column that marks each in the funnel's rows.
pub const FUNNEL_STAGES: [(&str, &str); 5] = [
    ("accepted", "s_accepted"),
    ("basic_orientation", "s_basic_orientation"),
    ("pact_signed", "s_pact_signed"),
    ("measure_or_proposal", "s_measure_or_proposal"),
    ("hired", "s_hired"),
];

/// Breakdowns every KPI takes (the person attributes only where rows carry a person).
pub const COMMON_DIMS: [&str; 13] = [
    "region",
    "province",
    "cpi",
    "month",
    "quarter",
    "year",
    "gender",
    "age_band",
    "category",
    "list_type",
    "disability_band",
    "education",
    "naspi",
];

/// Breakdowns that come from the person's latest application.
pub const PERSON_DIMS: [&str; 7] = [
    "gender",
    "age_band",
    "category",
    "list_type",
    "disability_band",
    "education",
    "naspi",
];

/// One KPI of the catalogue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KpiDef {
    pub id: &'static str,
    /// Italian label for users.
    pub label: &'static str,
    pub kind: Kind,
    /// The service section of KPIS.md (1–7), or 8 for the employers' side
    /// (docs/EVENTS-employers.md).
    pub section: &'static str,
    /// The KPI's own breakdowns, beyond the common ones.
    pub own: Vec<&'static str>,
    /// Whether rows carry `person_id` (so person attributes can break them down).
    pub person: bool,
    /// The column naming each row's statistical unit (`-- unit:`): whose record key keys the
    /// cells, and what a distinct count counts. `person_id` for the persons' KPIs,
    /// `vacancy_id` for the vacancies', `employer_id` for the employers' side.
    pub unit: &'static str,
    /// Days of observation each counted unit needs after its date (`-- follow_up: 90`): a
    /// period too recent to have them has no unit yet, which the pages say.
    pub follow_up: Option<u32>,
    /// For a rate (`-- not_stated: yes`): its rows carry `stated` (1 or 0), and a row that
    /// states nothing is out of both sides and counted in a `not_stated` column instead.
    pub not_stated: bool,
    #[serde(skip)]
    pub sql: &'static str,
}

impl KpiDef {
    /// Whether the cells count employers, each a statistical unit to protect: a cell from
    /// fewer than the threshold's employers is withheld below admin, whatever its figure (the
    /// frequency rule of business statistics), since one employer's posts can be many.
    pub fn counts_employers(&self) -> bool {
        self.unit == "employer_id"
    }

    /// Every breakdown this KPI accepts.
    pub fn allowed_dims(&self) -> Vec<&'static str> {
        if self.kind == Kind::Oe {
            return super::casemix::TERRITORIES.to_vec();
        }
        let mut v: Vec<&'static str> = COMMON_DIMS
            .iter()
            .copied()
            .filter(|d| self.person || !PERSON_DIMS.contains(d))
            .collect();
        v.extend(self.own.iter().copied());
        v
    }
}

fn parse_def(stem: &'static str, sql: &'static str) -> Result<KpiDef, String> {
    let mut id = None;
    let mut label = None;
    let mut kind = None;
    let mut section = None;
    let mut own = Vec::new();
    let mut person = true;
    let mut unit = None;
    let mut follow_up = None;
    let mut not_stated = false;
    let mut rows = None;
    for line in sql.lines() {
        let Some(rest) = line.strip_prefix("-- ") else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        let Some((k, v)) = rest.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "id" => id = Some(v),
            "label" => label = Some(v),
            "kind" => kind = Some(Kind::parse(v).ok_or(format!("unknown kind {v}"))?),
            "section" => section = Some(v),
            "own" => own = crate::list::items(v).collect(),
            "person" => person = v == "yes",
            "unit" => {
                unit = Some(
                    UNITS
                        .iter()
                        .copied()
                        .find(|u| *u == v)
                        .ok_or(format!("unit {v} is not one of {UNITS:?}"))?,
                )
            }
            "not_stated" => not_stated = v == "yes",
            "rows" => rows = Some(v),
            "follow_up" => {
                follow_up = Some(
                    v.parse()
                        .map_err(|_| format!("follow_up {v} is not days"))?,
                )
            }
            _ => {}
        }
    }
    let id = id.ok_or("no `-- id:` line")?;
    if id != stem {
        return Err(format!("id {id} differs from the file name"));
    }
    // `-- rows: other_kpi`: the same rows as another KPI's file, counted another way (one row
    // query, never two copies to keep in step).
    let sql = match rows {
        None => sql,
        Some(other) => SQL_FILES
            .iter()
            .find(|(s, _)| *s == other)
            .map(|(_, sql)| *sql)
            .ok_or(format!("rows: no queries/{other}.sql"))?,
    };
    if matches!(kind, Some(Kind::Rate | Kind::Oe)) && !zero_or_one(sql, "num") {
        return Err(
            "a rate's `num` must be `CASE WHEN … THEN 1 ELSE 0 END AS num` \
                    (or THEN 0 ELSE 1): its cell keys multiply by it"
                .into(),
        );
    }
    if not_stated && (kind != Some(Kind::Rate) || !zero_or_one(sql, "stated")) {
        return Err(
            "`not_stated: yes` needs a rate with `CASE WHEN … END AS stated` (1 or 0)".into(),
        );
    }
    Ok(KpiDef {
        id,
        label: label.ok_or("no `-- label:` line")?,
        kind: kind.ok_or("no `-- kind:` line")?,
        section: section.ok_or("no `-- section:` line")?,
        own,
        person,
        unit: unit.unwrap_or(if person { "person_id" } else { "vacancy_id" }),
        follow_up,
        not_stated,
        sql,
    })
}

/// The statistical units a KPI's rows may count.
pub const UNITS: [&str; 3] = ["person_id", "vacancy_id", "employer_id"];

/// Whether every `… AS <column>` (a rate's `num` or `stated`) of a row query is a CASE giving 1
/// or 0, as its keyed sum (`sum(num * key)`, see `sql::key_aggregates`) needs.
fn zero_or_one(sql: &str, column: &str) -> bool {
    let words: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .collect();
    let ends: Vec<usize> = words
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0].eq_ignore_ascii_case("AS") && w[1].trim_end_matches(',') == column)
        .map(|(i, _)| i)
        .collect();
    !ends.is_empty()
        && ends.iter().all(|&i| {
            i >= 5 && {
                let tail: Vec<String> = words[i - 5..i].iter().map(|w| w.to_uppercase()).collect();
                tail == ["THEN", "1", "ELSE", "0", "END"]
                    || tail == ["THEN", "0", "ELSE", "1", "END"]
            }
        })
}

/// Every KPI, in the order of KPIS.md's sections, then by id.
pub fn catalog() -> &'static [KpiDef] {
    static C: OnceLock<Vec<KpiDef>> = OnceLock::new();
    C.get_or_init(|| {
        let mut v: Vec<KpiDef> = SQL_FILES
            .iter()
            .filter(|(stem, _)| !stem.starts_with('_'))
            .map(|(stem, sql)| {
                parse_def(stem, sql).unwrap_or_else(|e| panic!("queries/{stem}.sql: {e}"))
            })
            .collect();
        v.sort_by(|a, b| (a.section, a.id).cmp(&(b.section, b.id)));
        v
    })
}

pub fn find(id: &str) -> Option<&'static KpiDef> {
    catalog().iter().find(|d| d.id == id)
}

/// The cohort file's row query (`queries/_cohort.sql`).
pub fn cohort_sql() -> &'static str {
    SQL_FILES
        .iter()
        .find(|(stem, _)| *stem == "_cohort")
        .map(|(_, sql)| *sql)
        .expect("queries/_cohort.sql is embedded")
}

/// The shared views, one statement each.
pub fn view_statements() -> Vec<&'static str> {
    let sql = SQL_FILES
        .iter()
        .find(|(stem, _)| *stem == "_views")
        .map(|(_, sql)| *sql)
        .expect("queries/_views.sql is embedded");
    sql.split(";\n")
        .map(str::trim)
        .filter(|s| {
            s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_has_a_valid_header() {
        assert!(!catalog().is_empty());
        for d in catalog() {
            assert!(!d.label.is_empty(), "{}", d.id);
            for o in &d.own {
                assert!(
                    !COMMON_DIMS.contains(o),
                    "{}: own {o} shadows a common one",
                    d.id
                );
            }
        }
        assert!(view_statements().len() >= 4);
    }

    #[test]
    fn a_rate_numerator_must_be_zero_or_one() {
        let ok = "SELECT a,\n  CASE WHEN x > 1 THEN 1 ELSE 0 END AS num\nFROM t";
        assert!(zero_or_one(ok, "num"));
        assert!(zero_or_one(
            "SELECT CASE WHEN h IS NULL THEN 0 ELSE 1 END AS num, b",
            "num"
        ));
        assert!(!zero_or_one(
            "SELECT CASE WHEN x THEN 2 ELSE 0 END AS num",
            "num"
        ));
        assert!(!zero_or_one("SELECT count(*) AS num", "num"));
        assert!(!zero_or_one("SELECT a AS number", "num"));
        assert!(!zero_or_one(ok, "stated"));
        let def = "-- id: r\n-- label: R\n-- kind: rate\n-- section: 1\nSELECT x AS num FROM t";
        assert!(parse_def("r", def).unwrap_err().contains("num"));
    }
}
