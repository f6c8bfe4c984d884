//! Rules across the fields of one event: a registration's category, disability percentage and
//! list must agree, a fixed-term hire must state its months, and on the employers' side a
//! statement's size band must fit its base, a period must not end before it starts, and a
//! compensation must move posts to another known province.

use super::{RawRow, Val, Validator, Violation};
use crate::model::{EventType, Field};

impl Validator {
    /// Adds a violation for each rule across fields that the event breaks.
    pub(super) fn cross_field_rules(
        &self,
        t: EventType,
        row: &RawRow<'_>,
        vals: &[Val; Field::COUNT],
        errs: &mut Vec<Violation>,
    ) {
        let code = |f: Field| match &vals[f as usize] {
            Val::Code(c) => Some(*c),
            _ => None,
        };
        match t {
            EventType::ApplicationSubmitted => {
                let category = code(Field::Category);
                let list_type = code(Field::ListType);
                let pct = match vals[Field::DisabilityPct as usize] {
                    Val::Int(v) => Some(v),
                    _ => None,
                };
                let pct_given = row.get(Field::DisabilityPct).is_some();
                if let Some(c) = category {
                    let needs_pct = matches!(
                        c,
                        "invalido_civile" | "invalido_lavoro" | "invalido_servizio"
                    );
                    if needs_pct && !pct_given {
                        errs.push(Violation::new(
                            "disability_pct.missing",
                            format!("disability_pct is required for category {c}"),
                        ));
                    }
                    if let Some(v) = pct {
                        if c == "invalido_civile" && v <= 45 {
                            errs.push(Violation::new(
                                "eligibility.invalido_civile",
                                format!(
                                    "category invalido_civile requires disability_pct above 45, got {v}"
                                ),
                            ));
                        }
                        if c == "invalido_lavoro" && v <= 33 {
                            errs.push(Violation::new(
                                "eligibility.invalido_lavoro",
                                format!(
                                    "category invalido_lavoro requires disability_pct above 33, got {v}"
                                ),
                            ));
                        }
                    }
                }
                if let (Some(l), Some(c)) = (list_type, category)
                    && ((l == "art18") != (c == "art18"))
                {
                    errs.push(Violation::new(
                        "eligibility.list_type_category",
                        format!(
                            "list_type {l} and category {c} do not match: art18 goes with art18 only"
                        ),
                    ));
                }
            }
            EventType::Hired => {
                if let Val::Text(c) = &vals[Field::ContractCode as usize]
                    && c.starts_with("A.02")
                    && row.get(Field::ContractMonths).is_none()
                {
                    errs.push(Violation::new(
                        "contract_months.missing",
                        format!("contract_months is required for the fixed-term code {c}"),
                    ));
                }
            }
            EventType::ObligationStatement => {
                if let (Val::Int(base), Some(band)) =
                    (&vals[Field::BaseWorkforce as usize], code(Field::SizeBand))
                    && crate::model::size_band_of(*base) != Some(band)
                {
                    errs.push(Violation::new(
                        "size_band.base_workforce",
                        format!(
                            "size_band {band} does not agree with base_workforce {base} (15-35: 15_35, 36-50: 36_50, above 50: over_50)"
                        ),
                    ));
                }
                if let Val::Int(base) = &vals[Field::BaseWorkforce as usize] {
                    for f in [
                        Field::ReservedArt1,
                        Field::CoveredArt1,
                        Field::ReservedArt18,
                        Field::CoveredArt18,
                    ] {
                        if let Val::Int(n) = &vals[f as usize]
                            && n > base
                        {
                            errs.push(Violation::new(
                                "posts.base_workforce",
                                format!("{} {n} is more than the base_workforce {base}", f.name()),
                            ));
                        }
                    }
                }
                if row.get(Field::ReservedArt18).is_some() != row.get(Field::CoveredArt18).is_some()
                {
                    errs.push(Violation::new(
                        "reserved_art18.pair",
                        "reserved_art18 and covered_art18 come together: give both or neither",
                    ));
                }
            }
            EventType::ExemptionGranted | EventType::ObligationSuspended => {
                if let (Val::Date(a), Val::Date(b)) = (
                    &vals[Field::PeriodStart as usize],
                    &vals[Field::PeriodEnd as usize],
                ) && b < a
                {
                    errs.push(Violation::new(
                        "period_end.before_start",
                        format!("period_end {b} is before period_start {a}"),
                    ));
                }
            }
            EventType::TerritorialCompensation => {
                if let Val::Text(to) = &vals[Field::ToProvince as usize] {
                    match crate::reference::province(to) {
                        None => errs.push(Violation::new(
                            "to_province.unknown",
                            format!("to_province '{to}' is not a province sigla of territories.csv"),
                        )),
                        Some(p) if Some(p.sigla) == row.get(Field::Province) => {
                            errs.push(Violation::new(
                                "to_province.same",
                                format!(
                                    "to_province {to} is the province whose obligation is lowered: a compensation moves posts to another province"
                                ),
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
            _ => {}
        }
    }
}
