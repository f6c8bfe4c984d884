//! The two input formats, decoded into raw rows for the reading stage: CSV (a header row naming
//! the contract's columns, then one row per event) and JSON Lines (one object per line).

use std::borrow::Cow;
use std::io::BufRead;

use super::FileError;
use super::read::{Failure, Reader};
use super::validate::{RawRow, Violation};
use crate::model::{Field, REQUIRED_COLUMNS};

impl Reader<'_, '_> {
    /// Reads CSV: the header maps columns to the contract's fields (or says why it cannot), then
    /// each row is accepted or quarantined.
    pub(super) fn read_csv(
        &mut self,
        reader: Box<dyn BufRead + '_>,
        gz: bool,
    ) -> Result<(), Failure> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(reader);
        let mut rec = csv::ByteRecord::new();
        let csv_err = |e: csv::Error, gz: bool| -> Failure {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            match e.into_kind() {
                csv::ErrorKind::Io(io) if gz => Failure::File(FileError::Gzip(io)),
                csv::ErrorKind::Io(io) => Failure::File(FileError::Io(io)),
                other => Failure::File(FileError::Csv {
                    line,
                    message: format!("{other:?}"),
                }),
            }
        };
        if !rdr.read_byte_record(&mut rec).map_err(|e| csv_err(e, gz))? {
            return Err(Failure::File(FileError::NoHeader(
                "the file is empty".into(),
            )));
        }
        let mut names: Vec<String> = Vec::with_capacity(rec.len());
        for (i, f) in rec.iter().enumerate() {
            let f = if i == 0 {
                f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f)
            } else {
                f
            };
            let s = std::str::from_utf8(f)
                .map_err(|_| Failure::File(FileError::NotUtf8 { line: 1 }))?;
            names.push(s.trim().to_owned());
        }
        let map: Vec<Option<Field>> = names.iter().map(|n| Field::from_name(n)).collect();
        if map.iter().all(Option::is_none) {
            if let Some(sep) = other_separator(&names) {
                return Err(Failure::File(FileError::Separator(sep)));
            }
            return Err(Failure::File(FileError::NoHeader(
                "the first line names none of the contract's columns (event_id, event_type, ...)"
                    .into(),
            )));
        }
        let missing: Vec<&'static str> = REQUIRED_COLUMNS
            .iter()
            .filter(|f| !map.contains(&Some(**f)))
            .map(|f| f.name())
            .collect();
        if !missing.is_empty() {
            return Err(Failure::File(FileError::MissingColumns(missing)));
        }
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(csv_err(e, gz)),
            }
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let mut row = RawRow::default();
            for (i, f) in rec.iter().enumerate() {
                let s = std::str::from_utf8(f)
                    .map_err(|_| Failure::File(FileError::NotUtf8 { line }))?;
                if let Some(Some(field)) = map.get(i) {
                    row.set(*field, Cow::Borrowed(s));
                }
            }
            let shape_error = (rec.len() != names.len()).then(|| {
                Violation::new(
                    "csv.field_count",
                    format!(
                        "the row has {} fields but the header has {}",
                        rec.len(),
                        names.len()
                    ),
                )
            });
            let to_json = || {
                let mut obj = serde_json::Map::new();
                for (i, f) in rec.iter().enumerate() {
                    let name = names.get(i).cloned().unwrap_or_else(|| format!("_{i}"));
                    let text = String::from_utf8_lossy(f).into_owned();
                    obj.insert(name, serde_json::Value::String(text));
                }
                obj
            };
            self.accept(line, &row, shape_error, to_json)?;
        }
        Ok(())
    }

    /// Reads JSON Lines: each non-blank line is one object; a line that is not one is
    /// quarantined, not fatal.
    pub(super) fn read_jsonl(
        &mut self,
        mut reader: Box<dyn BufRead + '_>,
        gz: bool,
    ) -> Result<(), Failure> {
        let mut buf = Vec::with_capacity(4096);
        let mut line = 0u64;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(|e| {
                if gz {
                    Failure::File(FileError::Gzip(e))
                } else {
                    Failure::File(FileError::Io(e))
                }
            })?;
            if n == 0 {
                break;
            }
            line += 1;
            let text = std::str::from_utf8(&buf)
                .map_err(|_| Failure::File(FileError::NotUtf8 { line }))?;
            let text = if line == 1 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            if text.trim().is_empty() {
                continue;
            }
            let parsed: Result<serde_json::Map<String, serde_json::Value>, _> =
                serde_json::from_str(text);
            let obj = match parsed {
                Ok(o) => o,
                Err(e) => {
                    let v = Violation::new(
                        "json.syntax",
                        format!("the line is not a JSON object: {e}"),
                    );
                    let mut raw = serde_json::Map::new();
                    raw.insert(
                        "_line".into(),
                        serde_json::Value::String(text.trim_end().to_owned()),
                    );
                    self.read += 1;
                    self.quarantine(line, &RawRow::default(), vec![v], raw);
                    continue;
                }
            };
            let mut row = RawRow::default();
            let mut shape: Vec<Violation> = Vec::new();
            for (k, v) in &obj {
                let Some(field) = Field::from_name(k) else {
                    continue;
                };
                let text = match v {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
                    serde_json::Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
                    serde_json::Value::Number(n) => Cow::Owned(n.to_string()),
                    _ => {
                        shape.push(Violation::new(
                            "json.value_type",
                            format!("{k} must be a string, a number or a boolean"),
                        ));
                        continue;
                    }
                };
                row.set(field, text);
            }
            let first = shape.into_iter().next();
            self.accept(line, &row, first, || obj.clone())?;
        }
        Ok(())
    }
}

/// The separator a header that names none of the contract's columns with ',' uses instead, if
/// splitting it by `;`, a tab or `|` names at least two of them.
fn other_separator(names: &[String]) -> Option<char> {
    let line = names.join(",");
    [';', '\t', '|'].into_iter().find(|&sep| {
        line.split(sep)
            .filter(|n| Field::from_name(n.trim()).is_some())
            .count()
            >= 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{FileReport, Ingester};
    use crate::privacy::Key;
    use crate::store::Store;

    /// A file as Excel writes "CSV" in an Italian locale: the whole file is rejected, and the
    /// reason names the separator found and the one the contract expects.
    #[test]
    fn a_semicolon_header_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let mut ing = Ingester::new(&store, Key::from_bytes([7; 32])).unwrap();
        let file = dir.path().join("excel.csv");
        std::fs::write(
            &file,
            "event_id;event_type;occurred_at;person_cf\ne-1;hire;2025-03-05T10:00:00Z;X\n",
        )
        .unwrap();
        match ing.ingest_file(&file).unwrap() {
            FileReport::Failed { error, .. } => {
                assert!(
                    error.contains("separated by ';', the contract expects ','"),
                    "{error}"
                );
                assert!(!error.contains("no header"), "{error}");
            }
            other => panic!("a ';' file must be rejected whole: {other:?}"),
        }
        assert_eq!(other_separator(&["a\tb".into()]), None);
        assert_eq!(other_separator(&["event_id|event_type".into()]), Some('|'));
    }
}
