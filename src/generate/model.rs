//! The compact in-memory form of a generated event. A region of a 800,000-person run holds a few
//! million of these at once, so every field is a small integer that indexes a table and is
//! turned into text only when the row is written.

/// Days since 0001-01-01 (chrono's `num_days_from_ce`): plain integer arithmetic for timelines.
pub(super) type Day = i32;

/// Sentinel for an absent `u8` field.
pub(super) const NO8: u8 = u8::MAX;
/// Sentinel for an absent `u32` reference.
pub(super) const NO32: u32 = u32::MAX;

/// Tri-state bool for optional flags: absent, false, true.
pub(super) const fn tri(v: Option<bool>) -> u8 {
    match v {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

macro_rules! kinds {
    ($($v:ident => $s:literal),* $(,)?) => {
        /// The event types of EVENTS.md, in its order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        #[repr(u8)]
        pub(super) enum Kind { $($v),* }
        impl Kind {
            #[cfg(test)]
            pub(super) const ALL: &'static [Kind] = &[$(Kind::$v),*];
            pub(super) fn as_str(self) -> &'static str {
                match self { $(Kind::$v => $s),* }
            }
        }
    };
}

kinds! {
    ApplicationSubmitted => "application_submitted",
    CertificationRequested => "certification_requested",
    ApplicationAccepted => "application_accepted",
    ApplicationPreRejected => "application_pre_rejected",
    ApplicationRejected => "application_rejected",
    RegistrationCancelled => "registration_cancelled",
    BasicOrientation => "basic_orientation",
    QualitativeProfiling => "qualitative_profiling",
    AdrInformation => "adr_information",
    PactSigned => "pact_signed",
    PactUpdated => "pact_updated",
    PactReview => "pact_review",
    SpecialistOrientation => "specialist_orientation",
    SkillsAssessment => "skills_assessment",
    Referral => "referral",
    JobSearchSupport => "job_search_support",
    MeasureStarted => "measure_started",
    TutoringMeeting => "tutoring_meeting",
    MeasureEnded => "measure_ended",
    VacancyOpened => "vacancy_opened",
    CandidateProposed => "candidate_proposed",
    CandidatePreselected => "candidate_preselected",
    CandidateSelected => "candidate_selected",
    CandidateNotSelected => "candidate_not_selected",
    VacancyClosed => "vacancy_closed",
    Hired => "hired",
    EmploymentEnded => "employment_ended",
    ObligationStatement => "obligation_statement",
    AgreementSigned => "agreement_signed",
    AgreementEnded => "agreement_ended",
    ExemptionGranted => "exemption_granted",
    ObligationSuspended => "obligation_suspended",
    TerritorialCompensation => "territorial_compensation",
    NumericalRequest => "numerical_request",
}

impl Kind {
    /// Vacancy events and the employers' side are the ones without a person.
    pub(super) fn has_person(self) -> bool {
        !matches!(self, Kind::VacancyOpened | Kind::VacancyClosed) && !self.is_employers()
    }

    /// The employers' side (docs/EVENTS-employers.md).
    pub(super) fn is_employers(self) -> bool {
        self >= Kind::ObligationStatement
    }
}

pub(super) const LIST_TYPES: [&str; 2] = ["art1", "art18"];
pub(super) const CATEGORIES: [&str; 6] = [
    "invalido_civile",
    "invalido_lavoro",
    "invalido_servizio",
    "non_vedente",
    "sordo",
    "art18",
];
pub(super) const CAT_CIVILE: u8 = 0;
pub(super) const CAT_LAVORO: u8 = 1;
pub(super) const CAT_SERVIZIO: u8 = 2;
pub(super) const CAT_ART18: u8 = 5;
pub(super) const AGENCIES: [&str; 2] = ["INPS", "INAIL"];
pub(super) const DECISION_REASONS: [&str; 6] = [
    "requirements_missing",
    "documents_incomplete",
    "not_unemployed",
    "invalidity_below_threshold",
    "age_out_of_range",
    "other",
];
pub(super) const CANCEL_REASONS: [&str; 8] = [
    "hired",
    "own_request",
    "missed_summons",
    "refused_offer",
    "lost_requirements",
    "deceased",
    "moved",
    "other",
];
pub(super) const CANCEL_HIRED: u8 = 0;
pub(super) const CANCEL_MISSED_SUMMONS: u8 = 2;
pub(super) const CANCEL_LOST_REQUIREMENTS: u8 = 4;
pub(super) const CANCEL_DECEASED: u8 = 5;
pub(super) const PROFILES: [&str; 4] = ["low", "medium", "high", "very_high"];
pub(super) const PROOF_METHODS: [&str; 4] = ["in_person", "online", "email", "other"];
pub(super) const REVIEW_OUTCOMES: [&str; 3] = ["on_track", "corrective_action", "no_show"];
pub(super) const OUTCOME_NO_SHOW: u8 = 2;
pub(super) const TO_SERVICES: [&str; 4] = [
    "training",
    "social_services",
    "health_services",
    "other_pes",
];
pub(super) const SUPPORT_TYPES: [&str; 5] = [
    "coaching",
    "cv",
    "interview_prep",
    "self_promotion",
    "search_workshop",
];
pub(super) const MEASURE_TYPES: [&str; 5] = [
    "tirocinio",
    "work_experience",
    "borsa_lavoro",
    "training_course",
    "other",
];
pub(super) const MEASURE_TRAINING: u8 = 3;
pub(super) const MEASURE_END_REASONS: [&str; 4] = [
    "completed",
    "interrupted_person",
    "interrupted_host",
    "hired",
];
pub(super) const MEASURE_INTERRUPTED_PERSON: u8 = 1;
pub(super) const MEASURE_HIRED: u8 = 3;
pub(super) const REQUEST_TYPES: [&str; 4] = [
    "numerica",
    "nominativa",
    "convenzione_art11",
    "non_obbligata",
];
pub(super) const CHANNELS: [&str; 2] = ["pes_proposal", "self_application"];
pub(super) const CLOSE_REASONS: [&str; 4] = ["filled", "partially_filled", "withdrawn", "expired"];
/// CO codes: the table of EVENTS.md, then two other well-formed codes (class `other`).
pub(super) const CONTRACTS: [&str; 14] = [
    "A.01.00", "A.02.00", "A.02.01", "A.03.08", "A.03.09", "A.03.10", "A.05.02", "A.06.00",
    "A.06.01", "B.03.00", "C.01.00", "C.04.00", "A.04.02", "A.07.00",
];
pub(super) const HIRING_MODES: [&str; 8] = [
    "numerica",
    "nominativa",
    "convenzione_art11",
    "other",
    "convenzione_art11_c4",
    "convenzione_art12",
    "convenzione_art12bis",
    "convenzione_art14",
];
/// The hiring mode of a hire under an agreement of each type (`AGREEMENT_TYPES`).
pub(super) const AGREEMENT_MODES: [u8; 5] = [2, 4, 5, 6, 7];
pub(super) const SECTORS: [&str; 2] = ["public", "private"];
pub(super) const SIZE_BANDS: [&str; 3] = ["15_35", "36_50", "over_50"];
pub(super) const AGREEMENT_TYPES: [&str; 5] =
    ["art11_c1", "art11_c4", "art12", "art12bis", "art14"];
pub(super) const AGREEMENT_OUTCOMES: [&str; 4] = ["completed", "partial", "revoked", "expired"];
pub(super) const SUSPENSION_REASONS: [&str; 5] = [
    "cig",
    "solidarity_contract",
    "collective_dismissal",
    "crisis_procedure",
    "other",
];
pub(super) const EMPLOYMENT_END_REASONS: [&str; 4] =
    ["resignation", "dismissal", "term_expired", "other"];
pub(super) const ATECO_SECTIONS: &[u8; 21] = b"ABCDEFGHIJKLMNOPQRSTU";

/// Fields of an `application_submitted`.
#[derive(Debug, Clone, Copy)]
pub(super) struct App {
    pub category: u8,
    pub pct: u8,
    pub naspi: u8,
    pub education: u8,
    /// Bit 0: gender given explicitly; bit 1: birth date given explicitly.
    pub explicit: u8,
}

/// Fields of a `pact_signed` or `pact_updated`; absent ones are `NO8`/0 (see each).
#[derive(Debug, Clone, Copy)]
pub(super) struct PactFields {
    pub pact: u32,
    /// Operator number in the province, 0 = absent.
    pub responsible: u16,
    pub profile: u8,
    pub search_acts: u8,
    /// Days, 0 = absent.
    pub frequency: u8,
    pub proof: u8,
    /// Tri-state each: workshops, training, offers.
    pub avail: [u8; 3],
}

#[derive(Debug, Clone, Copy)]
pub(super) struct HireFields {
    pub employer: u32,
    pub vacancy: u32,
    pub contract: u8,
    /// 0 = absent.
    pub months: u8,
    pub part_time: u8,
    pub mode: u8,
    /// Index into the region's agreements (`NO32`: none), set by the employers' stage.
    pub agreement: u32,
}

/// What an employer files with the office (the employers' side), kept apart from `Ev` so that
/// events stay small: `Payload::Act` indexes the region's table of these.
#[derive(Debug, Clone, Copy)]
pub(super) enum Act {
    /// A *prospetto informativo*: the obligation of `year` in the employer's province.
    Statement {
        employer: u32,
        year: u16,
        public: bool,
        base: u32,
        /// Art. 1 and art. 18; art. 18 only when `art18` is given.
        reserved: [u16; 2],
        covered: [u16; 2],
        art18: bool,
    },
    AgreementSigned {
        employer: u32,
        agreement: u32,
    },
    AgreementEnded {
        employer: u32,
        agreement: u32,
        outcome: u8,
    },
    Exemption {
        employer: u32,
        pct: u8,
        workers: u16,
        from: Day,
        to: Day,
    },
    Suspension {
        employer: u32,
        reason: u8,
        from: Day,
        to: Day,
        /// 0 = not given.
        positions: u16,
    },
    Compensation {
        employer: u32,
        /// Index into `reference::provinces()`.
        to: u8,
        positions: u16,
    },
    Request {
        employer: u32,
        vacancy: u32,
        positions: u16,
    },
}

/// An agreement (*convenzione*) of the region.
#[derive(Debug, Clone, Copy)]
pub(super) struct Agreement {
    pub employer: u32,
    pub kind: u8,
    pub planned: u16,
    pub months: u8,
    pub signed: Day,
}

/// What the employers' side knows of an employer of the region.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct EmployerFacts {
    pub obliged: bool,
    pub public: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Payload {
    None,
    Application(App),
    Agency(u8),
    Reason(u8),
    /// Hundredths, `NO8` = absent.
    Profiling(u8),
    Pact(PactFields),
    Review {
        pact: u32,
        outcome: u8,
    },
    /// Tri-state `group` or `skills_gap`.
    Flag(u8),
    ToService(u8),
    Support(u8),
    Measure {
        measure: u32,
        kind: u8,
        employer: u32,
    },
    MeasureRef(u32),
    MeasureEnd {
        measure: u32,
        reason: u8,
    },
    Vacancy(u32),
    Candidate {
        vacancy: u32,
        channel: u8,
    },
    VacancyClose {
        vacancy: u32,
        reason: u8,
    },
    Hired(HireFields),
    Ended {
        employer: u32,
        reason: u8,
    },
    /// An act of the employers' side: index into the region's `acts`.
    Act(u32),
}

/// How `occurred_at` is written.
pub(super) const STAMP_DATE: u8 = 0;
/// Office hours in Rome, with the Rome offset (`+01:00`/`+02:00`).
pub(super) const STAMP_LOCAL: u8 = 1;
/// Office hours in Rome, written in UTC (`Z`).
pub(super) const STAMP_UTC: u8 = 2;
/// 23:xx UTC of the day before: already the event's day in Rome.
pub(super) const STAMP_LATE_UTC: u8 = 3;

/// Marks the copy of a row that reuses its event_id with other content (see `faults`).
pub(super) const FAULT_CONFLICT: u8 = 200;

/// One event. `date` is always the Europe/Rome calendar date.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ev {
    pub date: Day,
    /// Number within the event_id, assigned per region and year once rows are sorted.
    pub seq: u32,
    /// Index into the region's persons, `NO32` for vacancy events.
    pub person: u32,
    /// Minutes since midnight (Rome) for the office-hour stamps; 0..59 for the late ones.
    pub minute: u16,
    /// Operator number in the province, 0 = absent.
    pub operator: u16,
    pub kind: Kind,
    /// Index into `reference::provinces()`.
    pub prov: u8,
    /// 0-based CPI number within the province.
    pub cpi: u8,
    pub stamp: u8,
    /// How the person's CF is spelled: 0 as is, 1 lower case, 2 trailing space, 3 leading space.
    pub cf_style: u8,
    /// 0 = a valid row; otherwise the deliberate fault (`faults`) or `FAULT_CONFLICT`.
    pub fault: u8,
    pub payload: Payload,
}

impl Ev {
    /// Sort key within a file: the Rome date, then roughly the time of day.
    pub(super) fn sort_key(&self) -> (Day, u16) {
        // Late-UTC stamps keep 0..59 in `minute`: just after midnight in Rome, as they are.
        let t = if self.stamp == STAMP_DATE {
            0
        } else {
            self.minute
        };
        (self.date, t)
    }
}

/// Every field name of EVENTS.md (the union over the event types), in the CSV header order.
pub(super) const COLUMNS: [&str; 66] = [
    "event_id",
    "event_type",
    "occurred_at",
    "province",
    "cpi_code",
    "person_cf",
    "operator_id",
    "list_type",
    "category",
    "disability_pct",
    "naspi",
    "education",
    "gender",
    "birth_date",
    "agency",
    "reason",
    "profiling_index",
    "pact_id",
    "responsible_operator",
    "employability_profile",
    "search_acts",
    "contact_frequency_days",
    "search_proof_method",
    "avail_workshops",
    "avail_training",
    "avail_offers",
    "review_outcome",
    "group",
    "skills_gap",
    "to_service",
    "support_type",
    "measure_id",
    "measure_type",
    "employer_id",
    "end_reason",
    "vacancy_id",
    "positions",
    "request_type",
    "ateco_section",
    "profession_code",
    "channel",
    "close_reason",
    "contract_code",
    "contract_months",
    "part_time",
    "hiring_mode",
    "reference_year",
    "sector",
    "size_band",
    "base_workforce",
    "reserved_art1",
    "covered_art1",
    "reserved_art18",
    "covered_art18",
    "agreement_id",
    "agreement_type",
    "planned_hires",
    "duration_months",
    "agreement_outcome",
    "exemption_pct",
    "exempted_workers",
    "period_start",
    "period_end",
    "suspension_reason",
    "to_province",
    "employer_obliged",
];

/// Column indices into `COLUMNS`.
pub(super) mod col {
    pub const EVENT_ID: usize = 0;
    pub const EVENT_TYPE: usize = 1;
    pub const OCCURRED_AT: usize = 2;
    pub const PROVINCE: usize = 3;
    pub const CPI_CODE: usize = 4;
    pub const PERSON_CF: usize = 5;
    pub const OPERATOR_ID: usize = 6;
    pub const LIST_TYPE: usize = 7;
    pub const CATEGORY: usize = 8;
    pub const DISABILITY_PCT: usize = 9;
    pub const NASPI: usize = 10;
    pub const EDUCATION: usize = 11;
    pub const GENDER: usize = 12;
    pub const BIRTH_DATE: usize = 13;
    pub const AGENCY: usize = 14;
    pub const REASON: usize = 15;
    pub const PROFILING_INDEX: usize = 16;
    pub const PACT_ID: usize = 17;
    pub const RESPONSIBLE_OPERATOR: usize = 18;
    pub const EMPLOYABILITY_PROFILE: usize = 19;
    pub const SEARCH_ACTS: usize = 20;
    pub const CONTACT_FREQUENCY_DAYS: usize = 21;
    pub const SEARCH_PROOF_METHOD: usize = 22;
    pub const AVAIL_WORKSHOPS: usize = 23;
    pub const REVIEW_OUTCOME: usize = 26;
    pub const GROUP: usize = 27;
    pub const SKILLS_GAP: usize = 28;
    pub const TO_SERVICE: usize = 29;
    pub const SUPPORT_TYPE: usize = 30;
    pub const MEASURE_ID: usize = 31;
    pub const MEASURE_TYPE: usize = 32;
    pub const EMPLOYER_ID: usize = 33;
    pub const END_REASON: usize = 34;
    pub const VACANCY_ID: usize = 35;
    pub const POSITIONS: usize = 36;
    pub const REQUEST_TYPE: usize = 37;
    pub const ATECO_SECTION: usize = 38;
    pub const PROFESSION_CODE: usize = 39;
    pub const CHANNEL: usize = 40;
    pub const CLOSE_REASON: usize = 41;
    pub const CONTRACT_CODE: usize = 42;
    pub const CONTRACT_MONTHS: usize = 43;
    pub const PART_TIME: usize = 44;
    pub const HIRING_MODE: usize = 45;
    pub const REFERENCE_YEAR: usize = 46;
    pub const SECTOR: usize = 47;
    pub const SIZE_BAND: usize = 48;
    pub const BASE_WORKFORCE: usize = 49;
    pub const RESERVED_ART1: usize = 50;
    pub const COVERED_ART1: usize = 51;
    pub const RESERVED_ART18: usize = 52;
    pub const COVERED_ART18: usize = 53;
    pub const AGREEMENT_ID: usize = 54;
    pub const AGREEMENT_TYPE: usize = 55;
    pub const PLANNED_HIRES: usize = 56;
    pub const DURATION_MONTHS: usize = 57;
    pub const AGREEMENT_OUTCOME: usize = 58;
    pub const EXEMPTION_PCT: usize = 59;
    pub const EXEMPTED_WORKERS: usize = 60;
    pub const PERIOD_START: usize = 61;
    pub const PERIOD_END: usize = 62;
    pub const SUSPENSION_REASON: usize = 63;
    pub const TO_PROVINCE: usize = 64;
    pub const EMPLOYER_OBLIGED: usize = 65;
}

/// Columns written as JSON booleans.
pub(super) const BOOL_COLUMNS: [usize; 8] = [10, 23, 24, 25, 27, 28, 44, 65];
/// Columns written as JSON numbers.
pub(super) const NUMBER_COLUMNS: [usize; 17] = [
    9, 11, 16, 20, 21, 36, 43, 46, 49, 50, 51, 52, 53, 56, 57, 59, 60,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_indices_match_names() {
        assert_eq!(COLUMNS[col::HIRING_MODE], "hiring_mode");
        assert_eq!(COLUMNS[col::AVAIL_WORKSHOPS], "avail_workshops");
        assert_eq!(COLUMNS[col::REVIEW_OUTCOME], "review_outcome");
        assert_eq!(COLUMNS[col::VACANCY_ID], "vacancy_id");
        assert_eq!(COLUMNS[col::EMPLOYER_OBLIGED], "employer_obliged");
        assert_eq!(COLUMNS[col::PERIOD_START], "period_start");
        for (c, name) in COLUMNS.iter().enumerate() {
            let field = crate::model::Field::from_name(name).expect("a field of the contract");
            assert_eq!(field as usize, c, "{name}: the contract's order");
        }
        for i in BOOL_COLUMNS {
            assert!(
                [
                    "naspi",
                    "group",
                    "skills_gap",
                    "part_time",
                    "employer_obliged"
                ]
                .contains(&COLUMNS[i])
                    || COLUMNS[i].starts_with("avail_"),
                "{}",
                COLUMNS[i]
            );
        }
        for i in NUMBER_COLUMNS {
            assert!(
                [
                    "disability_pct",
                    "education",
                    "profiling_index",
                    "search_acts",
                    "contact_frequency_days",
                    "positions",
                    "contract_months",
                    "reference_year",
                    "base_workforce",
                    "reserved_art1",
                    "covered_art1",
                    "reserved_art18",
                    "covered_art18",
                    "planned_hires",
                    "duration_months",
                    "exemption_pct",
                    "exempted_workers"
                ]
                .contains(&COLUMNS[i]),
                "{}",
                COLUMNS[i]
            );
        }
        assert_eq!(Kind::ALL.len(), 34);
        for k in Kind::ALL {
            let t = crate::model::EventType::parse(k.as_str()).expect("a type of the contract");
            assert_eq!(t.has_person(), k.has_person(), "{}", k.as_str());
        }
    }
}
