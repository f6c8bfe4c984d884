//! The project's one Italian vocabulary: how a column, a coded value, a date or an instant
//! reads to a person. Pages, charts, exports and the report all name things through it, so a
//! column is called the same everywhere it is shown.
//!
//! Codes stay codes in the data, the JSON and the API; only what people read is translated.

use crate::row::{Cell, Row};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Europe::Rome;

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
        "agency" => "Ente",
        "close_reason" => "Motivo di chiusura",
        "end_reason" => "Motivo di conclusione",
        "employability_profile" => "Profilo di occupabilità",
        "education" => "Titolo di studio",
        "naspi" => "NASpI",
        "part_time" => "Orario di lavoro",
        "group_session" => "Tipo di colloquio",
        "sector" => "Settore",
        "size_band" => "Dimensione",
        "quota" => "Quota",
        "agreement_type" => "Tipo di convenzione",
        "suspension_reason" => "Motivo della sospensione",
        "to_province" => "Provincia di destinazione",
        "employers" => "Datori di lavoro",
        "value" => "Valore",
        "numerator" => "Numeratore",
        "denominator" => "Denominatore",
        "not_stated" => "Non indicato",
        "n" => "Casi",
        "day" => "Giorno",
        "at_risk" => "A rischio",
        "events" => "Assunzioni",
        "censored" => "Censurati",
        "survival" => "Non ancora assunti",
        "lower" => "Limite inferiore 95%",
        "upper" => "Limite superiore 95%",
        "lower_998" => "Limite inferiore 99,8%",
        "upper_998" => "Limite superiore 99,8%",
        "observed" => "Inserimenti osservati",
        "expected" => "Inserimenti attesi",
        "cohort" => "Coorte",
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
pub fn value_label(column: &str, v: &Cell) -> String {
    let s = match v {
        Cell::Text(s) => s.as_str(),
        Cell::Null => return "n.d.".into(),
        other => return other.plain(),
    };
    if let Some(label) = code_label(column, s) {
        return label.into();
    }
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
        ("province" | "to_province", p) => reference::province(p)
            .map(|x| format!("{} ({p})", x.name))
            .unwrap_or_else(|| p.to_owned()),
        ("ingested_at", t) => it_instant(t),
        (_, "unknown") => "n.d.".into(),
        (_, s) => s.to_owned(),
    }
}

/// The column beside a coded column that holds its Italian label: `contract_class_label`.
pub fn label_column(c: &str) -> String {
    format!("{c}_label")
}

/// The columns of a result that hold codes a person needs in words: its breakdowns (but the
/// year and quarter, which read as they are, and the region, stored by its name) and the
/// funnel's stage.
fn coded_columns<'a>(columns: &'a [String], by: &[String]) -> Vec<&'a str> {
    columns
        .iter()
        .map(String::as_str)
        .filter(|c| {
            (by.iter().any(|b| b == c) && !matches!(*c, "year" | "quarter" | "region"))
                || *c == "stage"
        })
        .collect()
}

/// Columns and rows with each coded column's Italian label right after its code (the coded
/// columns of a result broken down `by`, see [`coded_columns`]): the JSON of the API and exports
/// keeps the codes and adds `*_label`, CSV and XLSX show both. Pages show the label alone (see
/// [`value_label`]).
pub fn with_labels(columns: &[String], by: &[String], rows: &[Row]) -> (Vec<String>, Vec<Row>) {
    let coded = coded_columns(columns, by);
    let mut out_columns = Vec::with_capacity(columns.len() + coded.len());
    for c in columns {
        out_columns.push(c.clone());
        if coded.contains(&c.as_str()) {
            out_columns.push(label_column(c));
        }
    }
    let out_rows = rows
        .iter()
        .map(|r| {
            let mut m = Row::new();
            for (k, v) in r.iter() {
                m.insert(k.clone(), v.clone());
                if coded.contains(&k.as_str()) {
                    m.insert(label_column(k), value_label(k, v));
                }
            }
            m
        })
        .collect();
    (out_columns, out_rows)
}

/// A column's Italian header among `columns` as [`with_labels`] gives them: a coded column and
/// its label read "Classe di contratto (codice)" and "Classe di contratto".
pub fn labelled_header(columns: &[String], name: &str) -> String {
    if let Some(base) = name.strip_suffix("_label")
        && columns.iter().any(|c| c == base)
    {
        return column_label(base).to_owned();
    }
    if columns.contains(&label_column(name)) {
        return format!("{} (codice)", column_label(name));
    }
    column_label(name).to_owned()
}

/// The Italian words of a code of EVENTS.md (or of a derived breakdown), by the column that holds
/// it: every coded value a person reads goes through here, so that no English code shows.
pub fn code_label(column: &str, code: &str) -> Option<&'static str> {
    Some(match (column, code) {
        ("contract_class", "open_ended") => "Tempo indeterminato",
        ("contract_class", "fixed_term") => "Tempo determinato",
        ("contract_class", "apprenticeship") => "Apprendistato",
        ("contract_class", "intermittent") => "Lavoro intermittente",
        ("contract_class", "agency") => "Somministrazione",
        ("contract_class", "cococo") => "Co.co.co.",
        ("contract_class", "traineeship") => "Tirocinio",
        ("contract_class", "work_grant") => "Borsa lavoro",
        ("hiring_mode", "numerica") => "Avviamento numerico",
        ("hiring_mode", "nominativa") => "Avviamento nominativo",
        ("hiring_mode" | "request_type", "convenzione_art11") => "Convenzione (art. 11)",
        ("hiring_mode", "convenzione_art11_c4") => "Convenzione di integrazione (art. 11 c. 4)",
        ("hiring_mode", "convenzione_art12") => "Convenzione con cooperativa (art. 12)",
        ("hiring_mode", "convenzione_art12bis") => "Convenzione di inserimento (art. 12-bis)",
        ("hiring_mode", "convenzione_art14") => "Convenzione art. 14 D.Lgs. 276/2003",
        ("agreement_type", "art11_c1") => "Programma di assunzioni (art. 11 c. 1)",
        ("agreement_type", "art11_c4") => "Integrazione lavorativa (art. 11 c. 4)",
        ("agreement_type", "art12") => "Inserimento temporaneo in cooperativa (art. 12)",
        ("agreement_type", "art12bis") => "Inserimento lavorativo (art. 12-bis)",
        ("agreement_type", "art14") => "Art. 14 D.Lgs. 276/2003",
        ("agreement_outcome", "completed") => "Realizzata",
        ("agreement_outcome", "partial") => "Realizzata in parte",
        ("agreement_outcome", "revoked") => "Revocata",
        ("agreement_outcome", "expired") => "Scaduta senza assunzioni",
        ("sector", "public") => "Pubblico",
        ("sector", "private") => "Privato",
        ("size_band", "15_35") => "15–35 dipendenti",
        ("size_band", "36_50") => "36–50 dipendenti",
        ("size_band", "over_50") => "Oltre 50 dipendenti",
        ("quota", "art1") => "Disabili (art. 1)",
        ("quota", "art18") => "Categorie protette (art. 18)",
        ("suspension_reason", "cig") => "Cassa integrazione",
        ("suspension_reason", "solidarity_contract") => "Contratto di solidarietà",
        ("suspension_reason", "collective_dismissal") => "Licenziamento collettivo",
        ("suspension_reason", "crisis_procedure") => "Procedura di crisi",
        ("request_type", "numerica") => "Richiesta numerica",
        ("request_type", "nominativa") => "Richiesta nominativa",
        ("request_type", "non_obbligata") => "Datore non obbligato",
        ("category", "invalido_civile") => "Invalido civile",
        ("category", "invalido_lavoro") => "Invalido del lavoro",
        ("category", "invalido_servizio") => "Invalido per servizio",
        ("category", "non_vedente") => "Non vedente",
        ("category", "sordo") => "Sordo",
        ("category" | "list_type", "art18") => "Categorie protette (art. 18)",
        ("list_type", "art1") => "Disabili (art. 1)",
        ("reason", "requirements_missing") => "Requisiti mancanti",
        ("reason", "documents_incomplete") => "Documentazione incompleta",
        ("reason", "not_unemployed") => "Non disoccupato",
        ("reason", "invalidity_below_threshold") => "Invalidità sotto la soglia",
        ("reason", "age_out_of_range") => "Età fuori dai limiti",
        ("reason", "own_request") => "Su richiesta della persona",
        ("reason", "missed_summons") => "Mancata presentazione",
        ("reason", "refused_offer") => "Rifiuto di un'offerta congrua",
        ("reason", "lost_requirements") => "Perdita dei requisiti",
        ("reason", "deceased") => "Decesso",
        ("reason", "moved") => "Trasferimento",
        ("reason" | "end_reason", "hired") => "Assunzione",
        ("channel", "pes_proposal") => "Proposta del CPI",
        ("channel", "self_application") => "Autocandidatura",
        ("review_outcome", "on_track") => "In linea con il patto",
        ("review_outcome", "corrective_action") => "Azione correttiva",
        ("review_outcome", "no_show") => "Mancata presentazione",
        ("to_service", "training") => "Formazione",
        ("to_service", "social_services") => "Servizi sociali",
        ("to_service", "health_services") => "Servizi sanitari",
        ("to_service", "other_pes") => "Altro centro per l'impiego",
        ("support_type", "coaching") => "Coaching",
        ("support_type", "cv") => "Curriculum e lettere",
        ("support_type", "interview_prep") => "Preparazione ai colloqui",
        ("support_type", "self_promotion") => "Autopromozione",
        ("support_type", "search_workshop") => "Laboratorio di ricerca attiva",
        ("measure_type", "tirocinio") => "Tirocinio",
        ("measure_type", "work_experience") => "Esperienza di lavoro",
        ("measure_type", "borsa_lavoro") => "Borsa lavoro",
        ("measure_type", "training_course") => "Corso di formazione",
        ("end_reason", "completed") => "Conclusa",
        ("end_reason", "interrupted_person") => "Interrotta dalla persona",
        ("end_reason", "interrupted_host") => "Interrotta dall'ospitante",
        ("end_reason", "resignation") => "Dimissioni",
        ("end_reason", "dismissal") => "Licenziamento",
        ("end_reason", "term_expired") => "Termine del contratto",
        ("close_reason", "filled") => "Coperta",
        ("close_reason", "partially_filled") => "Coperta in parte",
        ("close_reason", "withdrawn") => "Ritirata",
        ("close_reason", "expired") => "Scaduta",
        ("employability_profile", "low") => "Bassa",
        ("employability_profile", "medium") => "Media",
        ("employability_profile", "high") => "Alta",
        ("employability_profile", "very_high") => "Molto alta",
        ("age_band", "15-29") => "15–29 anni",
        ("age_band", "30-54") => "30–54 anni",
        ("age_band", "55+") => "55 anni e oltre",
        ("disability_band", "<46") => "Fino al 45%",
        ("disability_band", "46-66") => "46–66%",
        ("disability_band", "67-79") => "67–79%",
        ("disability_band", "80-100") => "80–100%",
        ("disability_band", "n/a") => "Non applicabile",
        ("education", "0-2") => "Fino alla licenza media (ISCED 0–2)",
        ("education", "3-4") => "Diploma o post-diploma (ISCED 3–4)",
        ("education", "5-8") => "Laurea o titolo superiore (ISCED 5–8)",
        ("naspi", "yes") => "Percettore di NASpI",
        ("naspi", "no") => "Non percettore di NASpI",
        ("part_time", "yes") => "Tempo parziale",
        ("part_time", "no") => "Tempo pieno",
        ("group_session", "yes") => "Di gruppo",
        ("group_session", "no") => "Individuale",
        (_, "other") => "Altro",
        _ => return None,
    })
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

/// Ingest's rule codes (EVENTS.md, "What a bad row gets") that read as a whole.
const RULE_WORDS: &[(&str, &str)] = &[
    ("event_id.conflict", "ID evento: dati in conflitto"),
    ("event_type.unknown", "Tipo evento: non previsto"),
    ("province.unknown", "Provincia: sigla sconosciuta"),
    ("csv.field_count", "CSV: numero di campi errato"),
    ("json.syntax", "JSON: riga non valida"),
    ("json.value_type", "JSON: tipo di valore errato"),
    (
        "eligibility.invalido_civile",
        "Invalido civile sotto il 46%",
    ),
    (
        "eligibility.invalido_lavoro",
        "Invalido lavoro sotto il 34%",
    ),
    (
        "eligibility.list_type_category",
        "Lista e categoria incoerenti",
    ),
    (
        "size_band.base_workforce",
        "Dimensione incoerente con la base di computo",
    ),
    ("posts.base_workforce", "Posti oltre la base di computo"),
    (
        "reserved_art18.pair",
        "Quota art. 18 senza posti coperti (o viceversa)",
    ),
    (
        "period_end.before_start",
        "Periodo che finisce prima di iniziare",
    ),
    (
        "to_province.same",
        "Compensazione verso la stessa provincia",
    ),
    (
        "to_province.unknown",
        "Provincia di destinazione: sigla sconosciuta",
    ),
];

/// The fields of the input contract, as the other rule codes (`field.problem`) name them.
const RULE_FIELDS: &[(&str, &str)] = &[
    ("event_id", "ID evento"),
    ("event_type", "Tipo evento"),
    ("occurred_at", "Data evento"),
    ("province", "Provincia"),
    ("cpi_code", "Codice CPI"),
    ("person_cf", "CF persona"),
    ("operator_id", "ID operatore"),
    ("list_type", "Lista"),
    ("category", "Categoria"),
    ("disability_pct", "Percentuale di invalidità"),
    ("naspi", "NASpI"),
    ("education", "Titolo di studio"),
    ("gender", "Genere"),
    ("birth_date", "Data di nascita"),
    ("agency", "Ente"),
    ("reason", "Motivo"),
    ("profiling_index", "Indice di profilazione"),
    ("pact_id", "ID patto"),
    ("responsible_operator", "Operatore responsabile"),
    ("employability_profile", "Profilo di occupabilità"),
    ("search_acts", "Atti di ricerca"),
    ("contact_frequency_days", "Frequenza dei contatti"),
    ("search_proof_method", "Prova della ricerca"),
    ("avail_workshops", "Disponibilità laboratori"),
    ("avail_training", "Disponibilità formazione"),
    ("avail_offers", "Disponibilità offerte"),
    ("review_outcome", "Esito della verifica"),
    ("group", "Colloquio di gruppo"),
    ("skills_gap", "Divario di competenze"),
    ("to_service", "Servizio di destinazione"),
    ("support_type", "Tipo di intervento"),
    ("measure_id", "ID misura"),
    ("measure_type", "Tipo di misura"),
    ("employer_id", "Datore di lavoro"),
    ("end_reason", "Motivo di conclusione"),
    ("vacancy_id", "ID offerta"),
    ("positions", "Posti"),
    ("request_type", "Tipo di richiesta"),
    ("ateco_section", "Sezione ATECO"),
    ("profession_code", "Codice professione"),
    ("channel", "Canale"),
    ("close_reason", "Motivo di chiusura"),
    ("contract_code", "Codice contratto"),
    ("contract_months", "Durata contratto"),
    ("part_time", "Part-time"),
    ("hiring_mode", "Modalità di assunzione"),
    ("reference_year", "Anno di riferimento"),
    ("sector", "Settore"),
    ("size_band", "Dimensione"),
    ("base_workforce", "Base di computo"),
    ("reserved_art1", "Quota di riserva art. 1"),
    ("covered_art1", "Posti coperti art. 1"),
    ("reserved_art18", "Quota di riserva art. 18"),
    ("covered_art18", "Posti coperti art. 18"),
    ("agreement_id", "ID convenzione"),
    ("agreement_type", "Tipo di convenzione"),
    ("planned_hires", "Assunzioni programmate"),
    ("duration_months", "Durata della convenzione"),
    ("agreement_outcome", "Esito della convenzione"),
    ("exemption_pct", "Percentuale di esonero"),
    ("exempted_workers", "Posti esonerati"),
    ("period_start", "Inizio del periodo"),
    ("period_end", "Fine del periodo"),
    ("suspension_reason", "Motivo della sospensione"),
    ("to_province", "Provincia di destinazione"),
    ("employer_obliged", "Datore obbligato"),
];

/// The problems of the other rule codes, worded so that they agree with any field.
const RULE_PROBLEMS: &[(&str, &str)] = &[
    ("missing", "mancante"),
    ("invalid", "valore non valido"),
    ("format", "formato non valido"),
    ("identifier", "contiene un codice fiscale"),
    ("length", "lunghezza eccessiva"),
    ("range", "fuori dai limiti"),
    ("unknown", "valore sconosciuto"),
    ("conflict", "dati in conflitto"),
];

/// A quarantine rule code in Italian, for the data quality page and its exports:
/// `person_cf.invalid` reads "CF persona: valore non valido". A code that is not one of ingest's
/// stays as it is.
pub fn rule_label(code: &str) -> String {
    let find = |table: &[(&str, &'static str)], key: &str| {
        table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    };
    if let Some(words) = find(RULE_WORDS, code) {
        return words.to_owned();
    }
    code.split_once('.')
        .and_then(|(field, problem)| {
            Some(format!(
                "{}: {}",
                find(RULE_FIELDS, field)?,
                find(RULE_PROBLEMS, problem)?
            ))
        })
        .unwrap_or_else(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_in_italian() {
        assert_eq!(column_label("contract_class"), "Classe di contratto");
        assert_eq!(column_label("no_such_column"), "no_such_column");
        assert_eq!(value_label("month", &Cell::from("2025-03")), "mar 2025");
        assert_eq!(value_label("month", &Cell::from("2025-13")), "2025-13");
        assert_eq!(value_label("gender", &Cell::from("F")), "Donne");
        assert_eq!(value_label("province", &Cell::from("MI")), "Milano (MI)");
        assert_eq!(value_label("region", &Cell::Null), "n.d.");
        assert_eq!(
            value_label("contract_class", &Cell::from("fixed_term")),
            "Tempo determinato"
        );
        assert_eq!(value_label("hiring_mode", &Cell::from("other")), "Altro");
        assert_eq!(value_label("agency", &Cell::from("INPS")), "INPS");
    }

    #[test]
    fn labels_go_beside_their_codes() {
        let columns: Vec<String> = ["year", "contract_class", "value"].map(String::from).into();
        let by: Vec<String> = ["year", "contract_class"].map(String::from).into();
        assert_eq!(coded_columns(&columns, &by), ["contract_class"]);
        let row = Row::from_json(&serde_json::json!(
            {"year": 2025, "contract_class": "work_grant", "value": 3}
        ));
        let (c, rows) = with_labels(&columns, &by, &[row]);
        assert_eq!(
            c,
            ["year", "contract_class", "contract_class_label", "value"]
        );
        let keys: Vec<&String> = rows[0].iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["year", "contract_class", "contract_class_label", "value"]
        );
        assert_eq!(rows[0].text("contract_class_label"), Some("Borsa lavoro"));
        assert_eq!(
            labelled_header(&c, "contract_class"),
            "Classe di contratto (codice)"
        );
        assert_eq!(
            labelled_header(&c, "contract_class_label"),
            "Classe di contratto"
        );
        assert_eq!(labelled_header(&c, "value"), "Valore");
        assert_eq!(it_date("2025-12-31"), "31/12/2025");
        assert_eq!(it_instant("2025-06-30T22:00:00Z"), "01/07/2025 00:00");
    }

    /// Every rule ingest can break reads in Italian: each field of the input contract with each
    /// problem, and the codes that read as a whole.
    #[test]
    fn every_rule_code_reads_in_italian() {
        use crate::model::Field;
        assert_eq!(
            rule_label("person_cf.invalid"),
            "CF persona: valore non valido"
        );
        assert_eq!(
            rule_label("province.unknown"),
            "Provincia: sigla sconosciuta"
        );
        assert_eq!(rule_label("no.such_rule"), "no.such_rule");
        for f in Field::ALL {
            for (problem, _) in RULE_PROBLEMS {
                let code = format!("{}.{problem}", f.name());
                let label = rule_label(&code);
                assert!(label != code && !label.contains('_'), "{code}: {label}");
            }
        }
        for (code, label) in RULE_WORDS {
            assert_eq!(rule_label(code), *label);
        }
    }
}
