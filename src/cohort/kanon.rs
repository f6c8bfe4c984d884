//! k-anonymity by local recoding: which quasi-identifiers a row publishes at each level of
//! generalisation, and the level each row needs so that every group it falls in has at least
//! k rows.

use std::collections::HashMap;

use chrono::Datelike;

use super::spells::{Spell, date_of};

/// The columns that, together, could single a person out to someone who knows them from
/// elsewhere; the k-anonymity holds on these (with `withheld`).
pub const QUASI_IDENTIFIERS: &[&str] = &[
    "spell_no",
    "entry_period",
    "region",
    "province",
    "gender",
    "age_band",
    "category",
    "list_type",
    "disability_band",
    "naspi",
];

/// The generalisation steps, in order: least useful to evaluators first. A row in a group of
/// fewer than k rows takes the next step; `entry_month` shows the quarter instead of the month,
/// `entry_quarter` the year, `entry_year` nothing; every other step withholds that column.
pub const STEPS: &[&str] = &[
    "province",
    "entry_month",
    "naspi",
    "spell_no",
    "entry_quarter",
    "disability_band",
    "category",
    "region",
    "age_band",
    "gender",
    "list_type",
    "entry_year",
];

/// What the k-anonymity did to the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Anonymity {
    /// Every group of quasi-identifier values has at least this many rows.
    pub k: u64,
    /// Spells in the cohort.
    pub cohort_rows: usize,
    /// Rows written.
    pub rows: usize,
    /// Rows written with at least one quasi-identifier generalised or withheld.
    pub generalised: usize,
    /// Rows left out: only when the whole cohort has fewer than k rows.
    pub withheld: usize,
    /// Rows written that took each step of [`STEPS`], in order.
    pub by_step: Vec<(&'static str, usize)>,
}

impl Anonymity {
    /// How many rows took each step (those that some did).
    pub fn detail(&self) -> String {
        let steps: Vec<String> = self
            .by_step
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        format!("rows per generalisation step: {}", steps.join(", "))
    }

    /// One line for the command's output and the HTTP headers' readers.
    pub fn summary(&self) -> String {
        format!(
            "k-anonymity (k = {}): {} of {} rows generalised, {} withheld",
            self.k, self.generalised, self.cohort_rows, self.withheld
        )
    }
}

/// The published quasi-identifiers of a spell that took the first `level` steps of [`STEPS`].
pub(super) fn published(s: &Spell, level: usize) -> [Option<String>; 10] {
    let took = |step: &str| STEPS[..level].contains(&step);
    let keep = |step: &str, v: &Option<String>| if took(step) { None } else { v.clone() };
    let d = date_of(s.entry);
    let period = if took("entry_year") {
        None
    } else if took("entry_quarter") {
        Some(d.year().to_string())
    } else if took("entry_month") {
        Some(format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1))
    } else {
        Some(format!("{}-{:02}", d.year(), d.month()))
    };
    [
        if took("spell_no") {
            None
        } else {
            s.spell_no.map(|n| n.to_string())
        },
        period,
        keep("region", &s.region),
        keep("province", &s.province),
        keep("gender", &s.gender),
        keep("age_band", &s.age_band),
        keep("category", &s.category),
        keep("list_type", &s.list_type),
        keep("disability_band", &s.disability_band),
        if took("naspi") {
            None
        } else {
            s.naspi.map(|b| b.to_string())
        },
    ]
}

/// Generalisation levels (how many [`STEPS`] each spell took) such that every group of equal
/// published quasi-identifiers and level has at least `k` spells; `None` for a spell left out.
///
/// Local recoding: only the spells of groups smaller than k take the next step, so the others
/// keep every detail. Spells still in a small group after every step (all in one group, since
/// nothing is left to tell them apart) are joined by the smallest group that is large enough;
/// only a cohort of fewer than k spells is left out whole.
pub(super) fn levels(spells: &[Spell], k: usize) -> Vec<Option<usize>> {
    let mut level = vec![0usize; spells.len()];
    let key = |i: usize, level: &[usize]| (level[i], published(&spells[i], level[i]));
    for step in 0..=STEPS.len() {
        let mut groups: HashMap<_, Vec<usize>> = HashMap::new();
        for i in 0..spells.len() {
            groups.entry(key(i, &level)).or_default().push(i);
        }
        let small: Vec<usize> = groups
            .values()
            .filter(|g| g.len() < k)
            .flatten()
            .copied()
            .collect();
        if small.is_empty() {
            break;
        }
        if step < STEPS.len() {
            for i in small {
                level[i] = step + 1;
            }
            continue;
        }
        // Every step taken and still fewer than k: add the large group that loses least, the
        // most generalised already, then the smallest (then the first in row order, so the same
        // cohort always gives the same file).
        let donor = groups
            .values()
            .filter(|g| g.len() >= k)
            .min_by_key(|g| (std::cmp::Reverse(level[g[0]]), g.len(), g[0]));
        return match donor {
            Some(g) => {
                for &i in g {
                    level[i] = STEPS.len();
                }
                level.into_iter().map(Some).collect()
            }
            None => vec![None; spells.len()],
        };
    }
    level.into_iter().map(Some).collect()
}

#[cfg(test)]
mod tests {
    use super::super::spells::day_number;
    use super::*;

    fn spell(province: &str, entry: &str) -> Spell {
        Spell {
            spell_no: Some(1),
            region: Some("Lombardia".into()),
            province: Some(province.into()),
            entry: day_number(entry.parse().unwrap()),
            gender: Some("F".into()),
            ..Spell::default()
        }
    }

    #[test]
    fn small_groups_are_generalised_and_large_ones_kept() {
        // Five in Milan and five in Bergamo in March, one in Como: Como's province goes first,
        // then its month, and so on; alone to the end, it is joined by the first large group.
        let mut spells: Vec<Spell> = (0..5).map(|_| spell("MI", "2024-03-05")).collect();
        spells.extend((0..5).map(|_| spell("BG", "2024-03-20")));
        spells.push(spell("CO", "2024-03-09"));
        let l = levels(&spells, 5);
        assert_eq!(l[..5], [Some(STEPS.len()); 5]);
        assert_eq!(l[5..10], [Some(0); 5]);
        assert_eq!(l[10], Some(STEPS.len()));
        assert_eq!(
            published(&spells[10], STEPS.len()),
            std::array::from_fn(|_| None)
        );
        assert_eq!(
            published(&spells[5], 0)[..4],
            [
                Some("1".into()),
                Some("2024-03".into()),
                Some("Lombardia".into()),
                Some("BG".into())
            ]
        );
        // Two Como spells in the same quarter as three more: the month and province go.
        let mut spells: Vec<Spell> = (0..3).map(|_| spell("CO", "2024-02-01")).collect();
        spells.extend((0..2).map(|_| spell("CO", "2024-03-09")));
        spells.extend((0..5).map(|_| spell("MI", "2024-03-05")));
        let l = levels(&spells, 5);
        assert_eq!(l[..5], [Some(2); 5]);
        assert_eq!(published(&spells[0], 2)[1], Some("2024-Q1".into()));
        assert_eq!(l[5..], [Some(0); 5]);
        // A cohort smaller than k is withheld whole.
        assert_eq!(levels(&spells[..4], 5), [None; 4]);
    }
}
