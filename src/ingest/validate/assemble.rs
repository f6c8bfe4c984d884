//! From checked values to the stored event: the bytes of the content hash (which tells a resent
//! event from a changed one) and the typed fields, with identifiers pseudonymised and the values
//! derived at ingest (birth year and gender from the codice fiscale, pact completeness, contract
//! class and stable hire).

use chrono::{Datelike, NaiveDate};

use super::values::days_since_epoch;
use super::{Val, Validator};
use crate::codes;
use crate::model::{Event, EventType, Field};
use crate::reference;

impl Validator {
    /// Fills the event's type-specific fields from the checked values, taking them out.
    pub(super) fn assemble(
        &mut self,
        t: EventType,
        date: NaiveDate,
        person_cf: Option<&str>,
        vals: &mut [Val; Field::COUNT],
        e: &mut Event,
    ) {
        let mut take = |f: Field| std::mem::replace(&mut vals[f as usize], Val::Absent);
        fn code(v: Val) -> Option<&'static str> {
            match v {
                Val::Code(c) => Some(c),
                _ => None,
            }
        }
        fn text(v: Val) -> Option<String> {
            match v {
                Val::Text(s) => Some(s),
                _ => None,
            }
        }
        fn int(v: Val) -> Option<i32> {
            match v {
                Val::Int(i) => i32::try_from(i).ok(),
                _ => None,
            }
        }
        fn boolean(v: Val) -> Option<bool> {
            match v {
                Val::Bool(b) => Some(b),
                _ => None,
            }
        }
        e.list_type = code(take(Field::ListType));
        e.category = code(take(Field::Category));
        e.disability_pct = int(take(Field::DisabilityPct));
        e.naspi = boolean(take(Field::Naspi));
        e.education = int(take(Field::Education));
        e.gender = code(take(Field::Gender));
        e.birth_year = match take(Field::BirthDate) {
            Val::Date(d) => Some(d.year()),
            _ => None,
        };
        if t == EventType::ApplicationSubmitted
            && let Some(facts) = person_cf.and_then(codes::cf_facts)
        {
            e.gender = e.gender.or(Some(if facts.female { "F" } else { "M" }));
            e.birth_year = e
                .birth_year
                .or(Some(codes::cf_birth_year(facts.yy, date.year())));
        }
        e.agency = code(take(Field::Agency));
        e.reason = code(take(Field::Reason));
        e.profiling_index = match take(Field::ProfilingIndex) {
            Val::Dec(d) => Some(d),
            _ => None,
        };
        e.pact_id = text(take(Field::PactId));
        e.responsible_operator =
            text(take(Field::ResponsibleOperator)).map(|o| self.pseudo.pseudonym(&o));
        e.employability_profile = code(take(Field::EmployabilityProfile));
        e.search_acts = int(take(Field::SearchActs));
        e.contact_frequency_days = int(take(Field::ContactFrequencyDays));
        e.search_proof_method = code(take(Field::SearchProofMethod));
        e.avail_workshops = boolean(take(Field::AvailWorkshops));
        e.avail_training = boolean(take(Field::AvailTraining));
        e.avail_offers = boolean(take(Field::AvailOffers));
        if t == EventType::PactSigned {
            e.pact_complete = Some(
                e.responsible_operator.is_some()
                    && e.employability_profile.is_some()
                    && e.search_acts.is_some_and(|a| a >= 1)
                    && e.contact_frequency_days.is_some()
                    && e.search_proof_method.is_some()
                    && e.avail_workshops == Some(true)
                    && e.avail_training == Some(true)
                    && e.avail_offers == Some(true),
            );
        }
        e.review_outcome = code(take(Field::ReviewOutcome));
        e.group_session = boolean(take(Field::Group));
        e.skills_gap = boolean(take(Field::SkillsGap));
        e.to_service = code(take(Field::ToService));
        e.support_type = code(take(Field::SupportType));
        e.measure_id = text(take(Field::MeasureId));
        e.measure_type = code(take(Field::MeasureType));
        e.employer_id = text(take(Field::EmployerId)).map(|id| self.pseudo.pseudonym(&id));
        e.end_reason = code(take(Field::EndReason));
        e.vacancy_id = text(take(Field::VacancyId));
        e.positions = int(take(Field::Positions));
        e.request_type = code(take(Field::RequestType));
        e.ateco_section = text(take(Field::AtecoSection));
        e.profession_code = text(take(Field::ProfessionCode));
        e.channel = code(take(Field::Channel));
        e.close_reason = code(take(Field::CloseReason));
        e.contract_months = int(take(Field::ContractMonths));
        e.part_time = boolean(take(Field::PartTime));
        e.hiring_mode = code(take(Field::HiringMode));
        e.reference_year = int(take(Field::ReferenceYear));
        e.sector = code(take(Field::Sector));
        e.size_band = code(take(Field::SizeBand));
        e.base_workforce = int(take(Field::BaseWorkforce));
        e.reserved_art1 = int(take(Field::ReservedArt1));
        e.covered_art1 = int(take(Field::CoveredArt1));
        e.reserved_art18 = int(take(Field::ReservedArt18));
        e.covered_art18 = int(take(Field::CoveredArt18));
        e.agreement_id = text(take(Field::AgreementId));
        e.agreement_type = code(take(Field::AgreementType));
        e.planned_hires = int(take(Field::PlannedHires));
        e.duration_months = int(take(Field::DurationMonths));
        e.agreement_outcome = code(take(Field::AgreementOutcome));
        e.exemption_pct = int(take(Field::ExemptionPct));
        e.exempted_workers = int(take(Field::ExemptedWorkers));
        let day = |v: Val| match v {
            Val::Date(d) => Some(days_since_epoch(d)),
            _ => None,
        };
        e.period_start = day(take(Field::PeriodStart));
        e.period_end = day(take(Field::PeriodEnd));
        e.suspension_reason = code(take(Field::SuspensionReason));
        e.to_province =
            text(take(Field::ToProvince)).and_then(|p| reference::province(&p).map(|p| p.sigla));
        e.employer_obliged = boolean(take(Field::EmployerObliged));
        if let Some(c) = text(take(Field::ContractCode)) {
            let class = reference::contract_class(&c).expect("validated contract code");
            e.contract_class = Some(class.as_str());
            e.stable_hire = Some(reference::is_stable_hire(
                class,
                e.contract_months.map(i64::from),
            ));
            e.contract_code = Some(c);
        }
    }
}

/// Appends a text field to the content-hash input: its tag, its bytes, a terminator.
pub(super) fn push_text(h: &mut Vec<u8>, f: Field, s: &str) {
    h.push(f as u8);
    h.extend_from_slice(s.as_bytes());
    h.push(0xff);
}

/// Appends a parsed value to the content-hash input, by its type.
pub(super) fn hash_val(h: &mut Vec<u8>, tag: u8, v: &Val) {
    match v {
        Val::Absent => {}
        Val::Code(c) => {
            h.push(tag);
            h.extend_from_slice(c.as_bytes());
            h.push(0xff);
        }
        Val::Text(s) => {
            h.push(tag);
            h.extend_from_slice(s.as_bytes());
            h.push(0xff);
        }
        Val::Int(i) => {
            h.push(tag);
            h.extend_from_slice(&i.to_le_bytes());
        }
        Val::Dec(d) => {
            h.push(tag);
            h.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Val::Bool(b) => {
            h.push(tag);
            h.push(*b as u8);
        }
        Val::Date(d) => {
            h.push(tag);
            h.extend_from_slice(&days_since_epoch(*d).to_le_bytes());
        }
    }
}
