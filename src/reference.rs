//! Reference data compiled into the binary: territories (ISTAT) and contract codes (CO).
//!
//! The territories file is a verbatim copy of `shared/reference/territories.csv`, so names match
//! what ANPAL and the regions publish.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The territories file as shipped (header included).
pub const TERRITORIES_CSV: &str = include_str!("reference/territories.csv");
/// Contract codes with their classes, as shipped.
pub const CONTRACT_CODES_CSV: &str = include_str!("reference/contract_codes.csv");

/// One province (or metropolitan city) with its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Province {
    pub region_code: &'static str,
    pub region_name: &'static str,
    pub code: &'static str,
    pub sigla: &'static str,
    pub name: &'static str,
}

struct Territories {
    provinces: Vec<Province>,
    by_sigla: HashMap<&'static str, usize>,
}

fn territories() -> &'static Territories {
    static T: OnceLock<Territories> = OnceLock::new();
    T.get_or_init(|| {
        let mut provinces = Vec::new();
        for line in TERRITORIES_CSV.lines().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&'static str> = line.split(',').collect();
            assert_eq!(f.len(), 5, "bad territories line: {line}");
            provinces.push(Province {
                region_code: f[0],
                region_name: f[1],
                code: f[2],
                sigla: f[3],
                name: f[4],
            });
        }
        let by_sigla = provinces
            .iter()
            .enumerate()
            .map(|(i, p)| (p.sigla, i))
            .collect();
        Territories {
            provinces,
            by_sigla,
        }
    })
}

/// All 107 provinces in ISTAT order.
pub fn provinces() -> &'static [Province] {
    &territories().provinces
}

/// Looks a province up by its sigla (upper case, e.g. `MI`).
pub fn province(sigla: &str) -> Option<&'static Province> {
    let t = territories();
    t.by_sigla.get(sigla).map(|&i| &t.provinces[i])
}

/// The distinct regions, `(code, name)`, in ISTAT order.
pub fn regions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for p in provinces() {
        if out.last().map(|r| r.0) != Some(p.region_code) {
            out.push((p.region_code, p.region_name));
        }
    }
    out
}

/// Class of a Comunicazioni Obbligatorie contract code (EVENTS.md, "Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContractClass {
    OpenEnded,
    FixedTerm,
    Apprenticeship,
    Intermittent,
    Agency,
    Cococo,
    Traineeship,
    WorkGrant,
    Other,
}

impl ContractClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenEnded => "open_ended",
            Self::FixedTerm => "fixed_term",
            Self::Apprenticeship => "apprenticeship",
            Self::Intermittent => "intermittent",
            Self::Agency => "agency",
            Self::Cococo => "cococo",
            Self::Traineeship => "traineeship",
            Self::WorkGrant => "work_grant",
            Self::Other => "other",
        }
    }
}

/// True for a well-formed CO code: one capital letter, then `.NN.NN`.
pub fn is_well_formed_contract_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 7
        && b[0].is_ascii_uppercase()
        && b[1] == b'.'
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
        && b[4] == b'.'
        && b[5].is_ascii_digit()
        && b[6].is_ascii_digit()
}

/// Classifies a contract code; `None` when it is not well formed.
pub fn contract_class(code: &str) -> Option<ContractClass> {
    if !is_well_formed_contract_code(code) {
        return None;
    }
    Some(match code {
        "A.01.00" => ContractClass::OpenEnded,
        "A.02.00" | "A.02.01" => ContractClass::FixedTerm,
        "A.03.08" | "A.03.09" | "A.03.10" => ContractClass::Apprenticeship,
        "A.05.02" => ContractClass::Intermittent,
        "A.06.00" | "A.06.01" => ContractClass::Agency,
        "B.03.00" => ContractClass::Cococo,
        "C.01.00" => ContractClass::Traineeship,
        "C.04.00" => ContractClass::WorkGrant,
        _ if code.starts_with("A.02.") => ContractClass::FixedTerm,
        _ if code.starts_with("A.03.") => ContractClass::Apprenticeship,
        _ if code.starts_with("A.06.") => ContractClass::Agency,
        _ => ContractClass::Other,
    })
}

/// A hire is stable when open-ended, an apprenticeship, or fixed-term for 6 months or more.
pub fn is_stable_hire(class: ContractClass, contract_months: Option<i64>) -> bool {
    match class {
        ContractClass::OpenEnded | ContractClass::Apprenticeship => true,
        ContractClass::FixedTerm => contract_months.is_some_and(|m| m >= 6),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn territories_are_complete() {
        assert_eq!(provinces().len(), 107);
        assert_eq!(province("MI").unwrap().region_name, "Lombardia");
        assert_eq!(province("SU").unwrap().name, "Sud Sardegna");
        assert!(province("XX").is_none());
        assert_eq!(regions().len(), 20);
    }

    #[test]
    fn contract_classes_follow_the_table() {
        assert_eq!(contract_class("A.01.00"), Some(ContractClass::OpenEnded));
        assert_eq!(contract_class("A.02.01"), Some(ContractClass::FixedTerm));
        assert_eq!(
            contract_class("A.03.09"),
            Some(ContractClass::Apprenticeship)
        );
        assert_eq!(contract_class("Z.99.99"), Some(ContractClass::Other));
        assert_eq!(contract_class("A.1.00"), None);
        assert_eq!(contract_class("a.01.00"), None);
        assert!(is_stable_hire(ContractClass::FixedTerm, Some(6)));
        assert!(!is_stable_hire(ContractClass::FixedTerm, Some(5)));
        assert!(!is_stable_hire(ContractClass::Agency, Some(24)));
        // Every code of the shipped table classifies as the table says.
        for line in CONTRACT_CODES_CSV.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(contract_class(f[0]).unwrap().as_str(), f[1], "{line}");
        }
    }
}
