//! The project's one Italian vocabulary: how a column, a coded value, a date or an instant
//! reads to a person. Pages, charts, exports and the report all name things through it, so a
//! column is called the same everywhere it is shown.
//!
//! Codes stay codes in the data, the JSON and the API; only what people read is translated.

use chrono::{DateTime, NaiveDate};
use chrono_tz::Europe::Rome;
use serde_json::Value;

use crate::reference;

/// A column's Italian header (the code itself when it has none).
pub fn column_label(c: &str) -> &str {
    match c {
        "region" => "Regione",
        "province" => "Provincia",
        "cpi" => "CPI",
        "month" => "Mese",
        "quarter" => "Trimestre",
        "year" => "Anno",
        "gender" => "Genere",
        "age_band" => "Classe di età",
        "category" => "Categoria",
        "list_type" => "Lista",
        "disability_band" => "Percentuale di invalidità",
        "reason" => "Motivo",
        "overdue" => "Attesa",
        "channel" => "Canale",
        // EVENTS.md names the CO code's grouping a contract class.
        "contract_class" => "Classe di contratto",
        "hiring_mode" => "Modalità di assunzione",
        "measure_type" => "Tipo di misura",
        "review_outcome" => "Esito della verifica",
        "to_service" => "Servizio di destinazione",
        "support_type" => "Tipo di intervento",
        "request_type" => "Tipo di richiesta",
        "value" => "Valore",
        "numerator" => "Numeratore",
        "denominator" => "Denominatore",
        "n" => "Casi",
        "day" => "Giorno",
        "at_risk" => "A rischio",
        "events" => "Assunzioni",
        "censored" => "Censurati",
        "survival" => "Non ancora assunti",
        "lower" => "Limite inferiore 95%",
        "upper" => "Limite superiore 95%",
        "median_days" => "Giorni mediani",
        "stage" => "Tappa",
        "persons" => "Persone",
        "share_of_accepted" => "Quota sugli accolti",
        "batch_id" => "Lotto",
        "file" => "File",
        "ingested_at" => "Acquisito il",
        "status" => "Esito",
        "read" => "Righe lette",
        "stored" => "Memorizzate",
        "duplicates" => "Duplicate",
        "rejected" => "Scartate",
        "rule" => "Regola",
        other => other,
    }
}

const MONTHS: [&str; 12] = [
    "gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic",
];

/// A breakdown value as people read it: months and dates in Italian, codes in words.
pub fn value_label(column: &str, v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Null => return "n.d.".into(),
        other => return other.to_string(),
    };
    match (column, s) {
        ("month", m) => m
            .split_once('-')
            .and_then(|(y, mm)| Some((y, mm.parse::<usize>().ok()?)))
            .and_then(|(y, mm)| Some(format!("{} {y}", MONTHS.get(mm.checked_sub(1)?)?)))
            .unwrap_or_else(|| m.to_owned()),
        ("stage", "accepted") => "Iscrizione accolta".into(),
        ("stage", "basic_orientation") => "Orientamento di base".into(),
        ("stage", "pact_signed") => "Patto sottoscritto".into(),
        ("stage", "measure_or_proposal") => "Misura o candidatura".into(),
        ("stage", "hired") => "Assunzione".into(),
        ("overdue", "yes") => "oltre 30 giorni".into(),
        ("overdue", "no") => "entro 30 giorni".into(),
        ("gender", "F") => "Donne".into(),
        ("gender", "M") => "Uomini".into(),
        ("province", p) => reference::province(p)
            .map(|x| format!("{} ({p})", x.name))
            .unwrap_or_else(|| p.to_owned()),
        ("ingested_at", t) => it_instant(t),
        (_, "unknown") => "n.d.".into(),
        (_, s) => s.to_owned(),
    }
}

/// An Italian date: 31/12/2025 (the text as given when it is not a date).
pub fn it_date(iso: &str) -> String {
    iso.parse::<NaiveDate>()
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| iso.to_owned())
}

/// An instant as read in Rome: 31/12/2025 23:59 (the text as given when it is not RFC 3339).
pub fn it_instant(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Rome).format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_in_italian() {
        assert_eq!(column_label("contract_class"), "Classe di contratto");
        assert_eq!(column_label("no_such_column"), "no_such_column");
        assert_eq!(value_label("month", &Value::from("2025-03")), "mar 2025");
        assert_eq!(value_label("month", &Value::from("2025-13")), "2025-13");
        assert_eq!(value_label("gender", &Value::from("F")), "Donne");
        assert_eq!(value_label("province", &Value::from("MI")), "Milano (MI)");
        assert_eq!(value_label("region", &Value::Null), "n.d.");
        assert_eq!(it_date("2025-12-31"), "31/12/2025");
        assert_eq!(it_instant("2025-06-30T22:00:00Z"), "01/07/2025 00:00");
    }
}
