//! The ANPAL / Relazione al Parlamento workbook: fixed Italian sheets computed by the KPI engine
//! for one territory and period, each opening with the header block that makes it reproducible
//! (territory, period, `as_of`, data version, generation time, suppression threshold and the
//! command that regenerates it). Published tables: small cells are always suppressed.

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use rust_xlsxwriter::{Format, Workbook};

use crate::auth::disclosure;
use crate::query::{Dim, Engine, Kind, KpiDef, KpiResult, Params, QueryError, find};
use crate::row::{Cell, Row, col};
use crate::{reference, vocabulary};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

#[derive(Debug, Clone)]
pub struct AnpalOptions {
    pub year: i32,
    pub quarter: Option<u32>,
    /// A region name or ISTAT code; None for Italy.
    pub region: Option<String>,
    pub as_of: Option<String>,
    pub threshold: u64,
    /// A manager's territory (with its description for the header): rows outside never count.
    pub scope: Option<(crate::query::TerritoryScope, String)>,
}

/// One sheet: its name, header block, columns (Italian headers) and rows.
#[derive(Debug, Clone)]
pub struct Sheet {
    pub name: String,
    pub header: Vec<(String, String)>,
    pub columns: Vec<String>,
    /// How XLSX shows each column's numbers; CSV writes them plain.
    pub formats: Vec<Fmt>,
    pub rows: Vec<Vec<Cell>>,
}

/// A column's number format in the workbook.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fmt {
    /// Counts as `1.234`, rates (floats) as `12,3%`.
    Auto,
    /// A relative change, signed: `+4,2%`.
    Change,
    /// A difference of two rates in percentage points, signed: `+1,5`.
    Points,
}

/// The two year-on-year columns beside a figure: the same figure a year earlier, and the change
/// (relative for counts, in percentage points for rates, as the tiles show it).
const YOY: [&str; 2] = ["Anno precedente", "Variazione %"];
const POINTS: &str = "Variazione (punti percentuali)";

/// The change from `before` to `now` as the tiles show it: for a rate, the difference in
/// percentage points; for a count, the relative change. None when either is withheld or
/// missing, or a count was zero.
pub fn change(now: &Cell, before: &Cell, rate: bool) -> Option<f64> {
    let (a, b) = (now.as_f64()?, before.as_f64()?);
    if rate {
        Some((a - b) * 100.0)
    } else if b != 0.0 {
        Some((a - b) / b)
    } else {
        None
    }
}

const SERVICES: [(&str, &[&str]); 6] = [
    (
        "Iscrizione",
        &[
            "applications_received",
            "applications_accepted",
            "cancellations",
            "certification_requests",
            "acceptance_rate",
            "decisions_within_30d_rate",
        ],
    ),
    (
        "Orientamento di base",
        &[
            "basic_orientations",
            "persons_oriented",
            "qualitative_profilings",
        ],
    ),
    (
        "Patto di servizio",
        &[
            "pacts_signed",
            "pact_updates",
            "pact_reviews",
            "pact_completeness_rate",
            "pacts_with_referral",
        ],
    ),
    (
        "Orientamento specialistico",
        &[
            "specialist_sessions",
            "skills_assessments",
            "referrals",
            "skills_gap_rate",
        ],
    ),
    (
        "Accompagnamento al lavoro",
        &[
            "measures_started",
            "support_sessions",
            "persons_supported",
            "work_experiences_started",
            "measure_completion_rate",
        ],
    ),
    (
        "Incontro domanda/offerta",
        &[
            "vacancies_opened",
            "positions_offered",
            "candidates_proposed",
            "hires_via_matching",
            "preselection_rate",
            "selection_rate",
            "vacancies_with_candidates",
            "vacancy_fill_rate",
        ],
    ),
];

/// The employers' side: obligations by province and sector, agreements by type, and the other
/// acts as single figures.
const OBLIGATIONS: [&str; 5] = [
    "obliged_employers",
    "reserved_posts",
    "covered_posts",
    "uncovered_posts",
    "quota_coverage_rate",
];
const AGREEMENTS: [&str; 4] = [
    "agreements_signed",
    "planned_hires",
    "hires_under_agreements",
    "agreement_fulfilment_rate",
];
const EMPLOYER_ACTS: [&str; 6] = [
    "exemptions_granted",
    "exempted_workers",
    "obligation_suspensions",
    "compensated_posts",
    "numerical_requests",
    "numerical_requests_filled_60d",
];

const OUTCOMES: [&str; 5] = [
    "placement_rate_90",
    "placement_rate_180",
    "placement_rate_365",
    "stable_hire_rate",
    "retention_180",
];

impl AnpalOptions {
    fn period(&self) -> Result<(NaiveDate, NaiveDate), ReportError> {
        let bad = || {
            ReportError::Bad(format!(
                "no such period: year {} quarter {:?}",
                self.year, self.quarter
            ))
        };
        match self.quarter {
            None => Ok((
                NaiveDate::from_ymd_opt(self.year, 1, 1).ok_or_else(bad)?,
                NaiveDate::from_ymd_opt(self.year, 12, 31).ok_or_else(bad)?,
            )),
            Some(q @ 1..=4) => {
                let from = NaiveDate::from_ymd_opt(self.year, 3 * q - 2, 1).ok_or_else(bad)?;
                let to = from
                    .checked_add_months(chrono::Months::new(3))
                    .and_then(|d| d.pred_opt())
                    .ok_or_else(bad)?;
                Ok((from, to))
            }
            Some(q) => Err(ReportError::Bad(format!(
                "quarter {q} does not exist: use 1 to 4"
            ))),
        }
    }

    fn region_name(&self) -> Result<Option<&'static str>, ReportError> {
        match &self.region {
            None => Ok(None),
            Some(r) => reference::provinces()
                .iter()
                .find(|p| p.region_name.eq_ignore_ascii_case(r) || p.region_code == r.as_str())
                .map(|p| Some(p.region_name))
                .ok_or_else(|| ReportError::Bad(format!("unknown region '{r}'"))),
        }
    }
}

/// Computes every sheet.
pub async fn anpal(engine: &Engine, o: &AnpalOptions) -> Result<Vec<Sheet>, ReportError> {
    let (from, to) = o.period()?;
    let region = o.region_name()?;
    let as_of = o
        .as_of
        .as_deref()
        .map(crate::query::parse_as_of)
        .transpose()?;
    let threshold = o.threshold.max(disclosure::MIN_THRESHOLD);
    // The same period a year earlier, for the year-on-year columns.
    let earlier = |d: NaiveDate| d.checked_sub_months(chrono::Months::new(12)).unwrap_or(d);
    let (prev_from, prev_to) = (earlier(from), earlier(to));
    let run_in = |(from, to): (NaiveDate, NaiveDate),
                  id: &'static str,
                  by: &[&str],
                  as_of: Option<chrono::DateTime<Utc>>| {
        let def = find(id).expect("report KPIs are in the catalogue");
        let p = Params {
            from: Some(from),
            to: Some(to),
            by: by
                .iter()
                .map(|s| Dim::of(def, s).expect("report breakdowns are the KPIs' own"))
                .collect(),
            region: region.map(|r| vec![r.to_owned()]).unwrap_or_default(),
            as_of,
            scope: o.scope.as_ref().map(|(t, _)| t.clone()),
            cell_keys: true,
            ..Params::default()
        };
        async move {
            let r = engine.run(def, &p).await?;
            Ok::<_, QueryError>((def, disclosure::protect(&r, def.kind, threshold)))
        }
    };
    let run = |id, by, as_of| run_in((from, to), id, by, as_of);
    let run_before = |id, by, as_of| run_in((prev_from, prev_to), id, by, as_of);
    // The first result fixes as_of and the data version for the header of every sheet.
    let (_, first) = run(
        "registered_stock",
        &["province", "gender", "age_band", "category"],
        as_of,
    )
    .await?;
    let pinned_as_of = first.params.as_of.clone();
    // Every other sheet at the same instant, even if a batch commits meanwhile.
    let as_of = Some(crate::query::parse_as_of(&pinned_as_of)?);
    let (_, first_before) = run_before(
        "registered_stock",
        &["province", "gender", "age_band", "category"],
        as_of,
    )
    .await?;
    let version = first.params.data_version.clone();
    let territory = match (&o.scope, region) {
        (Some((_, label)), Some(r)) => format!("{r} (limitato a: {label})"),
        (Some((_, label)), None) => label.clone(),
        (None, Some(r)) => r.to_owned(),
        (None, None) => "Italia".to_owned(),
    };
    let command = format!(
        "mirato report anpal --year {}{}{} --as-of {} --out FILE.xlsx",
        o.year,
        o.quarter
            .map(|q| format!(" --quarter {q}"))
            .unwrap_or_default(),
        region
            .map(|r| format!(" --region '{r}'"))
            .unwrap_or_default(),
        pinned_as_of
    );
    let generated = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let header = |title: &str| -> Vec<(String, String)> {
        vec![
            ("Prospetto".into(), title.to_owned()),
            ("Territorio".into(), territory.clone()),
            (
                "Periodo".into(),
                format!("{} – {}", from.format("%d/%m/%Y"), to.format("%d/%m/%Y")),
            ),
            ("Dati acquisiti fino a (as_of)".into(), pinned_as_of.clone()),
            ("Versione dei dati".into(), version.clone()),
            (
                "Confronto".into(),
                format!(
                    "anno precedente: {} – {}",
                    prev_from.format("%d/%m/%Y"),
                    prev_to.format("%d/%m/%Y")
                ),
            ),
            ("Generato il".into(), generated.clone()),
            (
                "Protezione delle celle".into(),
                disclosure::describe(&disclosure::protection(threshold)),
            ),
            ("Per rigenerarlo".into(), command.clone()),
        ]
    };
    let mut sheets = Vec::new();
    let by1 = ["province", "gender", "age_band", "category"];
    let (columns, formats, rows) = table(&first, &first_before, &by1);
    sheets.push(Sheet {
        name: "1 Iscritti".into(),
        header: header(&format!(
            "Iscritti al {} per provincia, genere, classe di età e categoria",
            to.format("%d/%m/%Y")
        )),
        columns,
        formats,
        rows,
    });
    for (name, title, id, by) in [
        (
            "2 Nuove iscrizioni",
            "Nuove iscrizioni (istanze accolte) per provincia e categoria",
            "applications_accepted",
            &["province", "category"][..],
        ),
        (
            "3 Cancellazioni",
            "Cancellazioni dalla lista per motivo",
            "cancellations",
            &["reason"][..],
        ),
        (
            "4 Assunzioni",
            "Assunzioni per provincia, modalità di assunzione e classe di contratto",
            "hires",
            &["province", "hiring_mode", "contract_class"][..],
        ),
    ] {
        let (_, r) = run(id, by, as_of).await?;
        let (_, b) = run_before(id, by, as_of).await?;
        let (columns, formats, rows) = table(&r, &b, by);
        sheets.push(Sheet {
            name: name.into(),
            header: header(title),
            columns,
            formats,
            rows,
        });
    }
    let mut rows = Vec::new();
    for (service, ids) in SERVICES {
        for id in ids {
            let (def, r) = run(id, &[], as_of).await?;
            let (_, b) = run_before(id, &[], as_of).await?;
            let (now, before) = (first_value(&r), first_value(&b));
            let mut row = vec![
                Cell::from(service),
                Cell::from(*id),
                Cell::from(def.label),
                now.clone(),
                before.clone(),
            ];
            row.extend(change_cells(&now, &before, def.kind == Kind::Rate));
            rows.push(row);
        }
    }
    sheets.push(Sheet {
        name: "5 Servizi".into(),
        header: header("Le uscite dei sei servizi"),
        columns: [
            "Servizio",
            "Indicatore",
            "Descrizione",
            "Valore",
            YOY[0],
            YOY[1],
            POINTS,
        ]
        .map(String::from)
        .to_vec(),
        formats: vec![
            Fmt::Auto,
            Fmt::Auto,
            Fmt::Auto,
            Fmt::Auto,
            Fmt::Auto,
            Fmt::Change,
            Fmt::Points,
        ],
        rows,
    });
    let mut rows = Vec::new();
    for id in OUTCOMES {
        let (def, r) = run(id, &[], as_of).await?;
        let (_, b) = run_before(id, &[], as_of).await?;
        debug_assert_eq!(def.kind, Kind::Rate);
        let m = r.rows.first().cloned().unwrap_or_default();
        let (now, before) = (m.cell(col::VALUE).clone(), first_value(&b));
        let mut row = vec![
            Cell::from(id),
            Cell::from(def.label),
            now.clone(),
            before.clone(),
        ];
        row.extend(change_cells(&now, &before, true));
        row.push(m.cell(col::NUMERATOR).clone());
        row.push(m.cell(col::DENOMINATOR).clone());
        rows.push(row);
    }
    // The median time to placement (Kaplan–Meier, from the pact): days, not a rate, so in
    // whole days and with no numerator; withheld (empty) when the curve does not reach one half.
    let (def, r) = run("time_to_placement", &[], as_of).await?;
    let (_, b) = run_before("time_to_placement", &[], as_of).await?;
    let days = |r: &KpiResult| match r.median_days.as_ref().and_then(Cell::as_f64) {
        Some(d) => Cell::Int(d.round() as i64),
        None => Cell::Null,
    };
    let (now, before) = (days(&r), days(&b));
    let mut row = vec![
        Cell::from("time_to_placement"),
        Cell::from(format!("{} (giorni mediani)", def.label)),
        now.clone(),
        before.clone(),
    ];
    row.extend(change_cells(&now, &before, false));
    row.extend([Cell::Null, Cell::Null]);
    rows.push(row);
    sheets.push(Sheet {
        name: "6 Esiti".into(),
        header: header("Esiti: inserimento a 90, 180 e 365 giorni dal patto, assunzioni stabili, permanenza a 180 giorni, giorni mediani all'inserimento"),
        columns: [
            "Indicatore",
            "Descrizione",
            "Valore",
            YOY[0],
            YOY[1],
            POINTS,
            vocabulary::column_label(col::NUMERATOR),
            vocabulary::column_label(col::DENOMINATOR),
        ]
        .map(String::from)
        .to_vec(),
        formats: vec![Fmt::Auto, Fmt::Auto, Fmt::Auto, Fmt::Auto, Fmt::Change, Fmt::Points, Fmt::Auto, Fmt::Auto],
        rows,
    });

    // The employers' side (docs/EVENTS-employers.md), the Relazione's second half.
    for (name, title, ids, by) in [
        (
            "7 Obblighi",
            "Obblighi di assunzione: datori obbligati, quota di riserva, posti coperti e scoperti per provincia e settore (prospetti informativi dell'anno)",
            &OBLIGATIONS[..],
            &["province", "sector"][..],
        ),
        (
            "8 Convenzioni",
            "Convenzioni per tipo: stipulate, assunzioni programmate, assunzioni in convenzione, quota delle programmate realizzate alla scadenza",
            &AGREEMENTS[..],
            &["agreement_type"][..],
        ),
    ] {
        let mut figures = Vec::new();
        for id in ids {
            let (def, r) = run(id, by, as_of).await?;
            let (_, b) = run_before(id, by, as_of).await?;
            figures.push((def, r, b));
        }
        let (columns, formats, rows) = multi_table(&figures, by);
        sheets.push(Sheet {
            name: name.into(),
            header: header(title),
            columns,
            formats,
            rows,
        });
    }
    let mut rows = Vec::new();
    for id in EMPLOYER_ACTS {
        let (def, r) = run(id, &[], as_of).await?;
        let (_, b) = run_before(id, &[], as_of).await?;
        let (now, before) = (first_value(&r), first_value(&b));
        let mut row = vec![
            Cell::from(id),
            Cell::from(def.label),
            now.clone(),
            before.clone(),
        ];
        row.extend(change_cells(&now, &before, def.kind == Kind::Rate));
        rows.push(row);
    }
    sheets.push(Sheet {
        name: "9 Esoneri e sospensioni".into(),
        header: header("Esoneri parziali, sospensioni degli obblighi, compensazioni territoriali e richieste di avviamento numerico"),
        columns: ["Indicatore", "Descrizione", "Valore", YOY[0], YOY[1], POINTS]
            .map(String::from)
            .to_vec(),
        formats: vec![
            Fmt::Auto,
            Fmt::Auto,
            Fmt::Auto,
            Fmt::Auto,
            Fmt::Change,
            Fmt::Points,
        ],
        rows,
    });
    Ok(sheets)
}

/// A sheet of several KPIs with the same breakdowns: each group (in either year) with its
/// breakdowns' codes and labels, then per KPI its value and the same group's value a year
/// earlier (empty where the group has no row that year).
fn multi_table(
    figures: &[(&'static KpiDef, KpiResult, KpiResult)],
    by: &[&str],
) -> (Vec<String>, Vec<Fmt>, Vec<Vec<Cell>>) {
    use std::collections::BTreeMap;
    let by_cols: Vec<String> = by.iter().map(|c| (*c).to_owned()).collect();
    // Per group: its breakdown cells, and per KPI the values (now, a year before).
    let mut groups: BTreeMap<Vec<String>, (Row, Vec<[Cell; 2]>)> = BTreeMap::new();
    for (i, (_, now, before)) in figures.iter().enumerate() {
        for (year, r) in [(0, now), (1, before)] {
            for m in &r.rows {
                let mut keys = Row::new();
                for c in &by_cols {
                    keys.insert(c.clone(), m.cell(c).clone());
                }
                let entry = groups
                    .entry(m.key(&by_cols))
                    .or_insert_with(|| (keys, vec![[Cell::Null, Cell::Null]; figures.len()]));
                entry.1[i][year] = m.cell(col::VALUE).clone();
            }
        }
    }
    let keys: Vec<Row> = groups.values().map(|(k, _)| k.clone()).collect();
    let (cols, labelled) = vocabulary::with_labels(&by_cols, &by_cols, &keys);
    let mut headers: Vec<String> = cols
        .iter()
        .map(|c| vocabulary::labelled_header(&cols, c))
        .collect();
    let mut formats = vec![Fmt::Auto; cols.len()];
    for (def, _, _) in figures {
        headers.push(def.label.to_owned());
        headers.push(format!("{} – {}", def.label, YOY[0].to_lowercase()));
        formats.extend([Fmt::Auto, Fmt::Auto]);
    }
    let rows = groups
        .values()
        .zip(labelled)
        .map(|((_, values), m)| {
            let mut row: Vec<Cell> = cols.iter().map(|c| m.cell(c).clone()).collect();
            for [now, before] in values {
                row.push(now.clone());
                row.push(before.clone());
            }
            row
        })
        .collect();
    (headers, formats, rows)
}

/// A result's first value: the whole figure of a result without breakdown.
fn first_value(r: &KpiResult) -> Cell {
    r.rows
        .first()
        .map(|m| m.cell(col::VALUE).clone())
        .unwrap_or_default()
}

/// The relative change and the change in points: the one that applies filled, the other empty.
fn change_cells(now: &Cell, before: &Cell, rate: bool) -> [Cell; 2] {
    let c = Cell::from(change(now, before, rate));
    if rate {
        [Cell::Null, c]
    } else {
        [c, Cell::Null]
    }
}

/// A breakdown sheet: each breakdown's Italian label with its code in the column before it (see
/// `vocabulary::with_labels`), the value, the value of the same group a year earlier, and the
/// change. A group that is in one year only shows an empty cell for the other.
fn table(
    r: &KpiResult,
    before: &KpiResult,
    by: &[&str],
) -> (Vec<String>, Vec<Fmt>, Vec<Vec<Cell>>) {
    let by_cols: Vec<String> = by.iter().map(|c| (*c).to_owned()).collect();
    let mut cols = by_cols.clone();
    cols.push(col::VALUE.into());
    let (cols, labelled) = vocabulary::with_labels(&cols, &r.params.by, &r.rows);
    let earlier: std::collections::HashMap<Vec<String>, &Row> =
        before.rows.iter().map(|m| (m.key(&by_cols), m)).collect();
    let rows = labelled
        .iter()
        .map(|m| {
            let mut row: Vec<Cell> = cols.iter().map(|c| m.cell(c).clone()).collect();
            let now = m.cell(col::VALUE);
            let prev = earlier
                .get(&m.key(&by_cols))
                .map(|b| b.cell(col::VALUE).clone())
                .unwrap_or_default();
            row.push(Cell::from(change(now, &prev, false)));
            row.insert(row.len() - 1, prev);
            row
        })
        .collect();
    let mut headers: Vec<String> = cols
        .iter()
        .map(|c| vocabulary::labelled_header(&cols, c))
        .collect();
    headers.extend(YOY.map(String::from));
    let mut formats = vec![Fmt::Auto; cols.len() + 1];
    formats.push(Fmt::Change);
    (headers, formats, rows)
}

/// The workbook as bytes (for a download).
pub fn xlsx_bytes(sheets: &[Sheet]) -> Result<Vec<u8>, ReportError> {
    workbook(sheets, Path::new("workbook"))?
        .save_to_buffer()
        .map_err(|e| ReportError::Write {
            path: PathBuf::from("workbook"),
            message: e.to_string(),
        })
}

fn werr(path: &Path, e: &dyn std::fmt::Display) -> ReportError {
    ReportError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn ioerr(path: &Path, e: &std::io::Error) -> ReportError {
    werr(path, &crate::store::io_message(e))
}

fn workbook(sheets: &[Sheet], out: &Path) -> Result<Workbook, ReportError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let pct = Format::new().set_num_format("0.0%");
    let int = Format::new().set_num_format("#,##0");
    let change = Format::new().set_num_format("+0.0%;-0.0%;0.0%");
    let points = Format::new().set_num_format("+0.0;-0.0;0.0");
    for s in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(&s.name).map_err(|e| werr(out, &e))?;
        let mut row = 0u32;
        for (k, v) in &s.header {
            ws.write_string_with_format(row, 0, k, &bold)
                .map_err(|e| werr(out, &e))?;
            ws.write_string(row, 1, v).map_err(|e| werr(out, &e))?;
            row += 1;
        }
        row += 1;
        for (c, name) in s.columns.iter().enumerate() {
            ws.write_string_with_format(row, c as u16, name, &bold)
                .map_err(|e| werr(out, &e))?;
            ws.set_column_width(c as u16, if c == 0 { 30 } else { 22 })
                .map_err(|e| werr(out, &e))?;
        }
        for r in &s.rows {
            row += 1;
            for (c, v) in r.iter().enumerate() {
                let col = c as u16;
                let format = match (s.formats.get(c).copied().unwrap_or(Fmt::Auto), v) {
                    (Fmt::Change, _) => &change,
                    (Fmt::Points, _) => &points,
                    (Fmt::Auto, Cell::Int(_)) => &int,
                    (Fmt::Auto, _) => &pct,
                };
                let res = match v {
                    Cell::Int(_) | Cell::Float(_) => match v.as_f64() {
                        Some(x) => ws.write_number_with_format(row, col, x, format).map(|_| ()),
                        None => Ok(()),
                    },
                    Cell::Text(_) | Cell::Below(_) | Cell::Bool(_) => {
                        ws.write_string(row, col, v.plain()).map(|_| ())
                    }
                    Cell::Null => Ok(()),
                };
                res.map_err(|e| werr(out, &e))?;
            }
        }
    }
    Ok(wb)
}

/// Writes the workbook, and one CSV per sheet beside it (`FILE.1-iscritti.csv`, …).
pub fn write(sheets: &[Sheet], out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut wb = workbook(sheets, out)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| werr(dir, &e))?;
    }
    // Each file is written whole or not at all (a kill or a full disk leaves the old one);
    // the CSVs first, the workbook last.
    let book = wb.save_to_buffer().map_err(|e| werr(out, &e))?;
    let mut written = Vec::new();
    for s in sheets {
        let slug: String = s
            .name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = out.with_extension(format!("{slug}.csv"));
        // The project's one CSV writer: formula cells neutralised (`crate::csvfile`).
        let text = crate::csvfile::write(&s.header, &s.columns, &s.rows);
        crate::store::write_atomic(&path, text.as_bytes()).map_err(|e| ioerr(&path, &e))?;
        written.push(path);
    }
    crate::store::write_atomic(out, &book).map_err(|e| ioerr(out, &e))?;
    written.insert(0, out.to_path_buf());
    Ok(written)
}
