//! What the engine hands to disclosure control beside a result, and never shows: the cell key of
//! each published count (see [`super::cellkey`]), and for survival curves a life table in
//! fixed intervals whose counts can be perturbed one by one.

use std::collections::BTreeMap;

use super::cellkey;
use crate::row::{Row, col};

/// What protects the cells of a result that is not exact, as every output states it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Protection {
    /// `cell_key_perturbation`.
    pub method: String,
    pub threshold: u64,
    /// The noise lies within ±`noise_max`.
    pub noise_max: i64,
    pub noise_variance: f64,
}

/// The prefix of the key columns in the engine's SQL output.
pub const KEY_PREFIX: &str = "_ck_";

/// Beside a sum's cell key, its largest single amount (`_ck_top`), which scales its noise.
pub const TOP: &str = "top";

/// Per row of a result: column (`value`, `numerator`, `persons`, …) → its cell key.
pub type RowKeys = BTreeMap<String, u32>;

/// The width of a life-table interval, in days. A month: a survival curve below admin shows
/// where it stands month by month, never the day on which one person was placed.
pub const LIFE_INTERVAL_DAYS: i64 = 30;

/// One interval `[start, start + LIFE_INTERVAL_DAYS)` of a life table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LifeInterval {
    pub start: i64,
    pub events: u64,
    pub ck_events: u32,
    pub censored: u64,
    pub ck_censored: u32,
}

/// One breakdown group's life table: its size and its intervals up to the last observation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LifeGroup {
    /// The breakdown keys, as in the result's rows.
    pub keys: Row,
    pub n: u64,
    pub ck_n: u32,
    pub intervals: Vec<LifeInterval>,
}

/// Removes the key columns from `rows` and returns them, aligned with the rows.
pub fn take_keys(rows: &mut [Row]) -> Vec<RowKeys> {
    rows.iter_mut()
        .map(|row| {
            let names: Vec<String> = row
                .iter()
                .map(|(k, _)| k)
                .filter(|k| k.starts_with(KEY_PREFIX))
                .cloned()
                .collect();
            names
                .into_iter()
                .map(|name| {
                    let sum = row.remove(&name).and_then(|v| v.as_i64()).unwrap_or(0);
                    (name[KEY_PREFIX.len()..].to_owned(), cellkey::reduce(sum))
                })
                .collect()
        })
        .collect()
}

/// Life tables per group from the survival rows (`duration`, `event`, `_ck`, one per member).
pub fn life_tables(by: &[String], rows: &[Row]) -> Vec<LifeGroup> {
    let mut groups: BTreeMap<Vec<String>, (LifeGroup, i64, BTreeMap<i64, LifeInterval>)> =
        BTreeMap::new();
    for r in rows {
        let Some(d) = r.i64(col::DURATION) else {
            continue;
        };
        let placed = r.cell(col::EVENT).is_true();
        let ck = r.i64("_ck").unwrap_or(0);
        let entry = groups.entry(r.key(by)).or_insert_with(|| {
            (
                LifeGroup {
                    keys: r.only(by),
                    ..LifeGroup::default()
                },
                0,
                BTreeMap::new(),
            )
        });
        entry.0.n += 1;
        entry.1 += ck;
        let start = d.max(0) / LIFE_INTERVAL_DAYS * LIFE_INTERVAL_DAYS;
        let iv = entry.2.entry(start).or_insert_with(|| LifeInterval {
            start,
            ..LifeInterval::default()
        });
        if placed {
            iv.events += 1;
            iv.ck_events = iv.ck_events.wrapping_add(ck as u32);
        } else {
            iv.censored += 1;
            iv.ck_censored = iv.ck_censored.wrapping_add(ck as u32);
        }
    }
    groups
        .into_values()
        .map(|(mut g, ck, ivs)| {
            g.ck_n = cellkey::reduce(ck);
            g.intervals = ivs.into_values().collect();
            g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intervals_of_thirty_days_with_their_keys() {
        // Durations 0 (placed), 29 (censored), 30 (placed), 75 (placed): intervals 0 (1 event,
        // 1 censored), 30 (1 event), 60 (1 event); four members, keys 1+2+3+4 = 10.
        let rows: Vec<Row> = [(0, 1, 1), (29, 0, 2), (30, 1, 3), (75, 1, 4)]
            .iter()
            .map(|(d, e, k)| Row::from_json(&json!({"duration": d, "event": e, "_ck": k})))
            .collect();
        let t = life_tables(&[], &rows);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].n, t[0].ck_n), (4, 10));
        let iv: Vec<(i64, u64, u64, u32)> = t[0]
            .intervals
            .iter()
            .map(|i| (i.start, i.events, i.censored, i.ck_censored))
            .collect();
        assert_eq!(iv, [(0, 1, 1, 2), (30, 1, 0, 0), (60, 1, 0, 0)]);
    }

    #[test]
    fn key_columns_leave_the_rows() {
        let mut rows = vec![Row::from_json(
            &json!({"value": 3, "_ck_value": 4294967301i64}),
        )];
        let keys = take_keys(&mut rows);
        assert_eq!(rows[0].len(), 1);
        assert_eq!(keys[0]["value"], 5);
    }
}
