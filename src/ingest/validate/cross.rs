//! Rules across the fields of one event: a registration's category, disability percentage and
//! list must agree, and a fixed-term hire must state its months.

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
            _ => {}
        }
    }
}
