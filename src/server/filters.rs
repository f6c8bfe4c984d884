//! The filters of pages and exports, as they travel in the URL: period, territory, `as_of`.
//! Everything a view depends on is in its URL, so a link reproduces it. [`Checked`] hands
//! handlers the filters already checked; [`clamp`] narrows them to a manager's territory.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{Datelike, Months, NaiveDate};

use super::AppError;
use crate::query::{Params, RawParams, StoreFacts, catalog};

/// The query string as name → value. A name given twice has its values joined with commas, as
/// a multi-value filter (`region=Lazio&region=Umbria` = `region=Lazio,Umbria`). Decoding never
/// fails: bytes that are not UTF-8 become U+FFFD and then fail validation with a clear message.
pub fn parse_query(raw: Option<&str>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let v = v.trim().to_owned();
        out.entry(k.into_owned())
            .and_modify(|e| {
                if !v.is_empty() {
                    if !e.is_empty() {
                        e.push(',');
                    }
                    e.push_str(&v);
                }
            })
            .or_insert(v);
    }
    out
}

/// Refuses names outside `allowed`, naming the allowed ones.
pub fn check_names(q: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), AppError> {
    for k in q.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(AppError::bad(
                k,
                format!(
                    "unknown parameter '{k}'; the parameters are: {}",
                    allowed.join(", ")
                ),
                allowed.iter().map(|s| (*s).to_owned()).collect(),
            ));
        }
    }
    Ok(())
}

/// The filters shared by every page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub from: Option<String>,
    pub to: Option<String>,
    pub region: Option<String>,
    pub province: Option<String>,
    pub cpi: Option<String>,
    pub as_of: Option<String>,
}

impl Filters {
    pub const NAMES: [&'static str; 6] = ["from", "to", "region", "province", "cpi", "as_of"];

    pub fn from_query(q: &BTreeMap<String, String>) -> Filters {
        let get = |k: &str| value(q, k);
        Filters {
            from: get("from"),
            to: get("to"),
            region: get("region"),
            province: get("province"),
            cpi: get("cpi"),
            as_of: get("as_of"),
        }
    }

    /// The engine's parameters for one panel.
    pub fn raw(&self, by: &[String]) -> RawParams {
        RawParams {
            from: self.from.clone(),
            to: self.to.clone(),
            by: by.to_vec(),
            region: self.region.clone(),
            province: self.province.clone(),
            cpi: self.cpi.clone(),
            as_of: self.as_of.clone(),
        }
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        Self::NAMES
            .iter()
            .zip([
                &self.from,
                &self.to,
                &self.region,
                &self.province,
                &self.cpi,
                &self.as_of,
            ])
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
            .collect()
    }

    /// `?from=…&to=…` (empty when no filter is set), for links that carry the view.
    pub fn query_string(&self) -> String {
        let pairs = self.pairs();
        if pairs.is_empty() {
            return String::new();
        }
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.extend_pairs(pairs);
        format!("?{}", s.finish())
    }

    /// Checks the filters once, before any panel runs: dates (a period that runs forward),
    /// territory and `as_of`, as the engine reads them.
    pub fn check(&self) -> Result<(), AppError> {
        let def = catalog().first().expect("the catalogue is not empty");
        Params::parse(def, &self.raw(&[]))?;
        Ok(())
    }

    pub fn with_period(&self, from: NaiveDate, to: NaiveDate) -> Filters {
        Filters {
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            ..self.clone()
        }
    }
}

/// What a route takes besides the filters, and how it reads it from the decoded query.
pub trait Extra: Sized {
    /// The parameter names, besides [`Filters::NAMES`].
    const NAMES: &'static [&'static str];
    fn read(q: &BTreeMap<String, String>) -> Result<Self, AppError>;
}

/// Nothing besides the filters (pages and exports).
impl Extra for () {
    const NAMES: &'static [&'static str] = &[];
    fn read(_: &BTreeMap<String, String>) -> Result<(), AppError> {
        Ok(())
    }
}

/// A route's query string, checked: an axum extractor (as axum's `ValidatedForm` example) that
/// decodes it, refuses unknown names, checks the filters and reads the route's [`Extra`], so a
/// handler only ever sees good input. A bad value is a 400 naming the parameter (a page takes
/// `Result<Checked, AppError>` to answer in HTML instead).
#[derive(Debug, Clone)]
pub struct Checked<E = ()> {
    pub filters: Filters,
    pub extra: E,
}

impl<E: Extra> Checked<E> {
    pub fn parse(raw: Option<&str>) -> Result<Checked<E>, AppError> {
        let q = parse_query(raw);
        let names: Vec<&str> = Filters::NAMES.iter().chain(E::NAMES).copied().collect();
        check_names(&q, &names)?;
        let filters = Filters::from_query(&q);
        filters.check()?;
        Ok(Checked {
            filters,
            extra: E::read(&q)?,
        })
    }
}

impl<S: Send + Sync, E: Extra + Send> FromRequestParts<S> for Checked<E> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        Checked::parse(parts.uri.query())
    }
}

/// A parameter's value, `None` when absent or empty (an empty value means the default).
pub fn value(q: &BTreeMap<String, String>, name: &str) -> Option<String> {
    q.get(name).filter(|v| !v.is_empty()).cloned()
}

/// A manager's territorial filters, reduced to what lies in their scope. Values that cannot lie
/// in it are dropped; if nothing is left the scope itself applies (a Lombardia manager asking for
/// Lazio, or for Italy, gets Lombardia). The query enforces the scope anyway: this only decides
/// what the figures are labelled with.
pub(super) fn clamp(
    raw: &RawParams,
    who: &crate::auth::Principal,
    facts: &StoreFacts,
) -> RawParams {
    use crate::reference;
    let Some(t) = who.territory() else {
        return raw.clone();
    };
    let keep = |list: &Option<String>, ok: &dyn Fn(&str) -> bool| -> Option<String> {
        let kept: Vec<&str> = crate::list::items(list.as_deref().unwrap_or(""))
            .filter(|v| ok(v))
            .collect();
        (!kept.is_empty()).then(|| kept.join(","))
    };
    // The provinces the scope reaches: whole ones, and those of its CPIs.
    let province_of = |cpi: &str| {
        facts
            .cpis
            .iter()
            .find(|(_, c)| c == cpi)
            .map(|(p, _)| p.as_str())
    };
    let reached: Vec<&str> = t
        .provinces
        .iter()
        .map(String::as_str)
        .chain(t.cpis.iter().filter_map(|c| province_of(c)))
        .collect();
    let region_ok = |r: &str| {
        reference::provinces().iter().any(|p| {
            (p.region_name.eq_ignore_ascii_case(r) || p.region_code == r)
                && reached.contains(&p.sigla)
        })
    };
    let province_ok = |p: &str| reached.iter().any(|s| s.eq_ignore_ascii_case(p));
    let cpi_ok = |c: &str| {
        t.cpis.iter().any(|s| s == c)
            || province_of(c).is_some_and(|p| t.provinces.iter().any(|s| s == p))
    };
    RawParams {
        region: keep(&raw.region, &region_ok),
        province: keep(&raw.province, &province_ok),
        cpi: keep(&raw.cpi, &cpi_ok),
        ..raw.clone()
    }
}

/// The period presets offered beside the date fields, relative to the latest event.
pub fn presets(latest: NaiveDate) -> Vec<(String, NaiveDate, NaiveDate)> {
    let y = latest.year();
    let jan1 = |y| NaiveDate::from_ymd_opt(y, 1, 1).expect("1 January");
    let dec31 = |y| NaiveDate::from_ymd_opt(y, 12, 31).expect("31 December");
    let mut v = vec![
        ("Anno in corso".to_owned(), jan1(y), latest),
        (
            "Ultimi 12 mesi".to_owned(),
            latest
                .checked_sub_months(Months::new(12))
                .and_then(|d| d.succ_opt())
                .unwrap_or(jan1(y)),
            latest,
        ),
        (format!("Anno {}", y - 1), jan1(y - 1), dec31(y - 1)),
    ];
    for q in 1..=4u32 {
        let start = NaiveDate::from_ymd_opt(y, 3 * q - 2, 1).expect("quarter start");
        if start > latest {
            break;
        }
        let end = start
            .checked_add_months(Months::new(3))
            .and_then(|d| d.pred_opt())
            .expect("quarter end");
        v.push((format!("{q}° trimestre {y}"), start, end.min(latest)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_join_and_round_trip() {
        let q = parse_query(Some("region=Lazio&region=Umbria&from=2025-01-01&x=%FF"));
        assert_eq!(q["region"], "Lazio,Umbria");
        assert_eq!(q["x"], "\u{FFFD}");
        let f = Filters::from_query(&q);
        assert_eq!(f.query_string(), "?from=2025-01-01&region=Lazio%2CUmbria");
        assert!(check_names(&q, &Filters::NAMES).is_err());
    }

    #[test]
    fn checked_filters_refuse_bad_input_with_a_400() {
        let ok = Checked::<()>::parse(Some("from=2025-01-01&to=2025-03-31&province=MI")).unwrap();
        assert_eq!(ok.filters.province.as_deref(), Some("MI"));
        for bad in [
            "nope=1",
            "from=2025-13-01",
            "from=2025-04-01&to=2025-03-31",
            "as_of=ieri",
            "by=gender",
        ] {
            let e = Checked::<()>::parse(Some(bad)).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn presets_follow_the_latest_event() {
        let p = presets(NaiveDate::from_ymd_opt(2025, 5, 20).unwrap());
        let names: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "Anno in corso",
                "Ultimi 12 mesi",
                "Anno 2024",
                "1° trimestre 2025",
                "2° trimestre 2025"
            ]
        );
        assert_eq!(p[1].1, NaiveDate::from_ymd_opt(2024, 5, 21).unwrap());
        assert_eq!(p[4].2, NaiveDate::from_ymd_opt(2025, 5, 20).unwrap());
    }
}
