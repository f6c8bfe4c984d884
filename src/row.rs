//! A result's rows as typed cells, from DataFusion's batches (`query::to_rows`) to the edge.
//! Consumers ask a row for a number or a code by column; a figure that disclosure control
//! withholds is a cell kind of its own ([`Cell::Below`]) rather than a string that happens to
//! start with `<`. JSON, CSV and XLSX encode the cells at the edge. It sits below the query
//! engine and the vocabulary, which both speak of rows.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The names of the measure columns the engine produces, in one place (the KPI SQL's `AS value`,
/// `AS n`, … and the shaped rows of rates, funnels and survival curves).
pub mod col {
    pub const VALUE: &str = "value";
    pub const N: &str = "n";
    pub const NUMERATOR: &str = "numerator";
    pub const DENOMINATOR: &str = "denominator";
    /// A rate's units that state nothing, out of both sides (`-- not_stated: yes`).
    pub const NOT_STATED: &str = "not_stated";
    pub const STAGE: &str = "stage";
    pub const PERSONS: &str = "persons";
    pub const SHARE_OF_ACCEPTED: &str = "share_of_accepted";
    pub const DAY: &str = "day";
    pub const AT_RISK: &str = "at_risk";
    pub const EVENTS: &str = "events";
    pub const CENSORED: &str = "censored";
    pub const SURVIVAL: &str = "survival";
    pub const LOWER: &str = "lower";
    pub const UPPER: &str = "upper";
    pub const MEDIAN_DAYS: &str = "median_days";
    /// An O/E result's placements observed and expected, its cohort, and its 99.8% interval
    /// (the 95% one is `lower` / `upper`).
    pub const OBSERVED: &str = "observed";
    pub const EXPECTED: &str = "expected";
    pub const COHORT: &str = "cohort";
    pub const LOWER_998: &str = "lower_998";
    pub const UPPER_998: &str = "upper_998";
    /// The distinct employers behind a cell of the employers' side (see
    /// `KpiDef::counts_employers`).
    pub const UNITS: &str = "employers";
    /// A survival member's days to placement or censoring (the SQL's, never shown).
    pub const DURATION: &str = "duration";
    /// Whether a survival member was placed (the SQL's, never shown).
    pub const EVENT: &str = "event";
}

/// One cell of a result.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Cell {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A code, a label or a date (`2025-01-31`).
    Text(String),
    /// A count between 1 and this threshold − 1, withheld below admin: shown as `<5`.
    Below(u64),
}

impl Cell {
    /// A number as a float: integers and floats; a withheld count is no number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(x) if x.is_finite() => Some(*x),
            _ => None,
        }
    }

    /// An integer: an integer cell, or a float without a fractional part.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Float(x) if x.fract() == 0.0 && x.is_finite() => Some(*x as i64),
            _ => None,
        }
    }

    /// A count: a non-negative number, rounded.
    pub fn as_count(&self) -> Option<u64> {
        self.as_f64().map(|x| x.max(0.0).round() as u64)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    /// True for a flag, or for a number 1 (SQL's `CASE … THEN 1`).
    pub fn is_true(&self) -> bool {
        matches!(self, Cell::Bool(true)) || self.as_i64() == Some(1)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null) || matches!(self, Cell::Float(x) if !x.is_finite())
    }

    pub fn is_withheld(&self) -> bool {
        matches!(self, Cell::Below(_))
    }

    /// The cell as plain text: a code as it is, a number in JSON's notation, null as empty.
    /// What a CSV cell and a breakdown's group key hold.
    pub fn plain(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(_) => self.to_json().to_string(),
            Cell::Text(s) => s.clone(),
            Cell::Below(t) => format!("<{t}"),
        }
    }

    /// The cell as JSON: numbers stay numbers, a non-finite float is null, a withheld count
    /// is the string `<T`.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(i) => Value::from(*i),
            Cell::Float(x) => serde_json::Number::from_f64(*x)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Below(t) => Value::String(format!("<{t}")),
        }
    }

    /// A JSON value as a cell: what the tests and stored fixtures write.
    pub fn from_json(v: &Value) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Bool(b) => Cell::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map(Cell::Int)
                .or_else(|| n.as_u64().map(|u| Cell::Int(u as i64)))
                .unwrap_or_else(|| Cell::Float(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => Cell::Text(s.clone()),
            other => Cell::Text(other.to_string()),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}

impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Cell::Int(v as i64)
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Float(v)
    }
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Self {
        v.map(Cell::Float).unwrap_or(Cell::Null)
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_owned())
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}

/// One row of a result: column → cell, in the order the columns were set (as the SQL gave
/// them, a label right after its code). Serialises as a JSON object. A row has a dozen columns
/// at most, so a list looks up faster than a map.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(Vec<(String, Cell)>);

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, c) in &self.0 {
            m.serialize_entry(k, c)?;
        }
        m.end()
    }
}

impl Row {
    pub fn new() -> Self {
        Row::default()
    }

    pub fn get(&self, col: &str) -> Option<&Cell> {
        self.0.iter().find(|(k, _)| k == col).map(|(_, c)| c)
    }

    /// The cell of a column, null when the row has none.
    pub fn cell(&self, col: &str) -> &Cell {
        static NULL: Cell = Cell::Null;
        self.get(col).unwrap_or(&NULL)
    }

    /// Sets a column: in its place if the row has it, else last.
    pub fn insert(&mut self, col: impl Into<String>, cell: impl Into<Cell>) {
        let (col, cell) = (col.into(), cell.into());
        match self.0.iter_mut().find(|(k, _)| *k == col) {
            Some((_, c)) => *c = cell,
            None => self.0.push((col, cell)),
        }
    }

    pub fn remove(&mut self, col: &str) -> Option<Cell> {
        let i = self.0.iter().position(|(k, _)| k == col)?;
        Some(self.0.remove(i).1)
    }

    pub fn contains(&self, col: &str) -> bool {
        self.get(col).is_some()
    }

    /// A column as a float (see [`Cell::as_f64`]).
    pub fn f64(&self, col: &str) -> Option<f64> {
        self.cell(col).as_f64()
    }

    /// A column as an integer (see [`Cell::as_i64`]).
    pub fn i64(&self, col: &str) -> Option<i64> {
        self.cell(col).as_i64()
    }

    /// A column as a count (see [`Cell::as_count`]).
    pub fn count(&self, col: &str) -> Option<u64> {
        self.cell(col).as_count()
    }

    /// A column as text: a code or a date.
    pub fn text(&self, col: &str) -> Option<&str> {
        self.cell(col).as_str()
    }

    /// The row restricted to these columns, in their order: a breakdown group's keys.
    pub fn only(&self, cols: &[String]) -> Row {
        cols.iter()
            .map(|c| (c.clone(), self.cell(c).clone()))
            .collect()
    }

    /// The plain text of these columns: a key that groups rows by their breakdowns.
    pub fn key(&self, cols: &[String]) -> Vec<String> {
        cols.iter().map(|c| self.cell(c).plain()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Cell)> {
        self.0.iter().map(|(k, c)| (k, c))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Cell)> {
        self.0.iter_mut().map(|(k, c)| (&*k, c))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The row as a JSON object.
    pub fn to_json(&self) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .map(|(k, c)| (k.clone(), c.to_json()))
            .collect()
    }

    /// A JSON object as a row: what the tests write.
    pub fn from_json(v: &Value) -> Row {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Cell::from_json(v)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `row["value"]`: the cell of a column, null when the row has none.
impl std::ops::Index<&str> for Row {
    type Output = Cell;
    fn index(&self, col: &str) -> &Cell {
        self.cell(col)
    }
}

/// A cell equals the JSON it encodes as: what tests compare against.
impl PartialEq<Value> for Cell {
    fn eq(&self, other: &Value) -> bool {
        self.to_json() == *other
    }
}

impl FromIterator<(String, Cell)> for Row {
    fn from_iter<I: IntoIterator<Item = (String, Cell)>>(iter: I) -> Self {
        let mut r = Row::new();
        for (k, c) in iter {
            r.insert(k, c);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_serialise_as_the_json_they_stand_for() {
        let mut r = Row::new();
        r.insert(col::VALUE, Cell::Below(5));
        r.insert(col::N, 12i64);
        r.insert("rate", f64::NAN);
        r.insert("province", "MI");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"value": "<5", "n": 12, "rate": null, "province": "MI"})
        );
        assert_eq!(
            Row::from_json(&json!({"n": 12, "province": "MI"})).i64("n"),
            Some(12)
        );
    }

    #[test]
    fn a_withheld_count_is_no_number() {
        assert_eq!(Cell::Below(5).as_f64(), None);
        assert!(Cell::Below(5).is_withheld());
        assert_eq!(Cell::Float(2.0).as_i64(), Some(2));
        assert_eq!(Cell::Float(2.5).as_i64(), None);
        assert!(Cell::Int(1).is_true() && Cell::Bool(true).is_true() && !Cell::Null.is_true());
    }
}
