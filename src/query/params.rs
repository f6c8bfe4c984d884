//! The parameters of a query: as the user typed them ([`RawParams`]) and checked against a KPI
//! ([`Params`]): dates, breakdowns, territories and `as_of`.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::Rome;
use serde::Serialize;

use super::{KpiDef, QueryError};
use crate::reference;

/// Parameters as a user typed them (CLI flags or URL query), not yet checked.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RawParams {
    pub from: Option<String>,
    pub to: Option<String>,
    /// The breakdowns, one name each (at most two): text is split once where it is read
    /// (see [`crate::list`]), never joined again.
    #[serde(default)]
    pub by: Vec<String>,
    pub region: Option<String>,
    pub province: Option<String>,
    pub cpi: Option<String>,
    pub as_of: Option<String>,
}

/// Checked parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub by: Vec<Dim>,
    pub region: Vec<String>,
    pub province: Vec<String>,
    pub cpi: Vec<String>,
    pub as_of: Option<DateTime<Utc>>,
    /// Rows outside this territory never count, whatever was asked: set by the caller from
    /// who is asking, never from user input.
    pub scope: Option<TerritoryScope>,
    /// Whether to compute the cell keys that perturbation needs (see [`cells`]): for results
    /// that may be shown below admin. Exact-only callers (the command line) skip their cost.
    pub cell_keys: bool,
}

/// A breakdown the KPI allows: a name from the catalogue's fixed lists, never the caller's
/// text, so that it may enter the SQL text (see `sql::dim_expr`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dim(&'static str);

impl Dim {
    /// `name` as a breakdown of `def`, if `def` allows it.
    pub fn of(def: &KpiDef, name: &str) -> Option<Dim> {
        def.allowed_dims().into_iter().find(|d| *d == name).map(Dim)
    }

    pub fn name(self) -> &'static str {
        self.0
    }
}

/// The name alone: checked parameters print (and key caches) as the names they hold.
impl std::fmt::Debug for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

/// A territorial restriction: rows of these provinces, or of these CPIs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct TerritoryScope {
    pub provinces: Vec<String>,
    pub cpis: Vec<String>,
}

fn parse_day(param: &'static str, s: &str) -> Result<NaiveDate, QueryError> {
    crate::model::parse_date(s.trim()).ok_or_else(|| {
        QueryError::bad(
            param,
            format!("{param} '{s}' is not a date: use YYYY-MM-DD, e.g. 2025-12-31"),
            &[],
        )
    })
}

/// `as_of`: an RFC 3339 instant, or a date meaning the end of that day in Rome.
pub fn parse_as_of(s: &str) -> Result<DateTime<Utc>, QueryError> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    if let Some(d) = crate::model::parse_date(s) {
        use chrono::TimeZone;
        // The first instant of the next day in Rome. In the years when Italy moved its clocks at
        // midnight (1966–1979 and some 1940s), that midnight did not exist: the day then began
        // at 01:00.
        let start_of_next = d.succ_opt().and_then(|next| {
            let local = next.and_hms_opt(0, 0, 0)?;
            Rome.from_local_datetime(&local).earliest().or_else(|| {
                Rome.from_local_datetime(&(local + chrono::Duration::hours(1)))
                    .earliest()
            })
        });
        if let Some(start) = start_of_next {
            return Ok(start.with_timezone(&Utc) - chrono::Duration::microseconds(1));
        }
    }
    Err(QueryError::bad(
        "as_of",
        format!(
            "as_of '{s}' is not an instant: use RFC 3339 (2025-06-30T12:00:00Z) or a date (2025-06-30, meaning the end of that day in Rome)"
        ),
        &[],
    ))
}

impl Params {
    /// Checks raw parameters against a KPI: dates, breakdowns, territories.
    pub fn parse(def: &KpiDef, raw: &RawParams) -> Result<Params, QueryError> {
        let from = raw
            .from
            .as_deref()
            .map(|s| parse_day("from", s))
            .transpose()?;
        let to = raw.to.as_deref().map(|s| parse_day("to", s)).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(QueryError::bad(
                "from",
                format!("from ({f}) is after to ({t}): the period must run forward"),
                &[],
            ));
        }
        let allowed = def.allowed_dims();
        let by = raw
            .by
            .iter()
            .map(|b| b.trim())
            .filter(|b| !b.is_empty())
            .map(|b| {
                Dim::of(def, b).ok_or_else(|| {
                    QueryError::bad(
                        "by",
                        format!(
                            "{} cannot be broken down by '{b}'; allowed: {}",
                            def.id,
                            allowed.join(", ")
                        ),
                        &allowed,
                    )
                })
            })
            .collect::<Result<Vec<Dim>, _>>()?;
        if by.len() > 2 {
            return Err(QueryError::bad(
                "by",
                format!("at most two breakdowns, got {}", by.len()),
                &allowed,
            ));
        }
        if by.len() == 2 && by[0] == by[1] {
            return Err(QueryError::bad(
                "by",
                "the two breakdowns must differ",
                &allowed,
            ));
        }
        let region = crate::list::parse(raw.region.as_deref());
        let regions = reference::regions();
        for r in &region {
            if !regions.iter().any(|(code, name)| code == r || name == r) {
                let names: Vec<&str> = regions.iter().map(|(_, n)| *n).collect();
                return Err(QueryError::bad(
                    "region",
                    format!(
                        "unknown region '{r}'; use an ISTAT code (01-20) or a name: {}",
                        names.join(", ")
                    ),
                    &names,
                ));
            }
        }
        let province = crate::list::parse(raw.province.as_deref());
        for p in &province {
            if reference::province(p).is_none() {
                let siglas: Vec<&str> = reference::provinces().iter().map(|p| p.sigla).collect();
                return Err(QueryError::bad(
                    "province",
                    format!("unknown province '{p}'; use a sigla such as MI, RM, NA"),
                    &siglas,
                ));
            }
        }
        let cpi = crate::list::parse(raw.cpi.as_deref());
        for c in &cpi {
            if c.chars().count() > 16 {
                return Err(QueryError::bad(
                    "cpi",
                    format!("'{c}' is not a CPI code (1-16 characters)"),
                    &[],
                ));
            }
        }
        let as_of = raw.as_of.as_deref().map(parse_as_of).transpose()?;
        Ok(Params {
            from,
            to,
            by,
            region,
            province,
            cpi,
            as_of,
            scope: None,
            cell_keys: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_dates_whose_next_midnight_did_not_exist_in_rome() {
        // 1966-05-22 began at 01:00 CEST (clocks moved at midnight), which is 23:00 UTC of the
        // 21st: 1966-05-21 ends a microsecond before.
        let end = parse_as_of("1966-05-21").unwrap();
        assert_eq!(
            end.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "1966-05-21T22:59:59.999999Z"
        );
        for d in ["1967-05-27", "1979-05-26", "1940-06-14", "2025-06-30"] {
            assert!(parse_as_of(d).is_ok(), "{d}");
        }
    }
}
