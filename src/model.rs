//! The case-event contract (EVENTS.md, version 1, and its employers' side, version 2, in
//! docs/EVENTS-employers.md): fields, event types, and the typed event that
//! the store keeps.
//!
//! Validation lives in `ingest::validate`; this module only describes the contract, so that the
//! generator, the ingest and the tests share one source of truth.

/// Every field name the contract knows. Unknown input columns are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Field {
    EventId,
    EventType,
    OccurredAt,
    Province,
    CpiCode,
    PersonCf,
    OperatorId,
    ListType,
    Category,
    DisabilityPct,
    Naspi,
    Education,
    Gender,
    BirthDate,
    Agency,
    Reason,
    ProfilingIndex,
    PactId,
    ResponsibleOperator,
    EmployabilityProfile,
    SearchActs,
    ContactFrequencyDays,
    SearchProofMethod,
    AvailWorkshops,
    AvailTraining,
    AvailOffers,
    ReviewOutcome,
    Group,
    SkillsGap,
    ToService,
    SupportType,
    MeasureId,
    MeasureType,
    EmployerId,
    EndReason,
    VacancyId,
    Positions,
    RequestType,
    AtecoSection,
    ProfessionCode,
    Channel,
    CloseReason,
    ContractCode,
    ContractMonths,
    PartTime,
    HiringMode,
    // Version 2, the employers' side (docs/EVENTS-employers.md). New fields go last: a field's
    // position tags it in the content hash, so stored events keep their hashes.
    ReferenceYear,
    Sector,
    SizeBand,
    BaseWorkforce,
    ReservedArt1,
    CoveredArt1,
    ReservedArt18,
    CoveredArt18,
    AgreementId,
    AgreementType,
    PlannedHires,
    DurationMonths,
    AgreementOutcome,
    ExemptionPct,
    ExemptedWorkers,
    PeriodStart,
    PeriodEnd,
    SuspensionReason,
    ToProvince,
    EmployerObliged,
}

impl Field {
    pub const ALL: [Field; 66] = [
        Field::EventId,
        Field::EventType,
        Field::OccurredAt,
        Field::Province,
        Field::CpiCode,
        Field::PersonCf,
        Field::OperatorId,
        Field::ListType,
        Field::Category,
        Field::DisabilityPct,
        Field::Naspi,
        Field::Education,
        Field::Gender,
        Field::BirthDate,
        Field::Agency,
        Field::Reason,
        Field::ProfilingIndex,
        Field::PactId,
        Field::ResponsibleOperator,
        Field::EmployabilityProfile,
        Field::SearchActs,
        Field::ContactFrequencyDays,
        Field::SearchProofMethod,
        Field::AvailWorkshops,
        Field::AvailTraining,
        Field::AvailOffers,
        Field::ReviewOutcome,
        Field::Group,
        Field::SkillsGap,
        Field::ToService,
        Field::SupportType,
        Field::MeasureId,
        Field::MeasureType,
        Field::EmployerId,
        Field::EndReason,
        Field::VacancyId,
        Field::Positions,
        Field::RequestType,
        Field::AtecoSection,
        Field::ProfessionCode,
        Field::Channel,
        Field::CloseReason,
        Field::ContractCode,
        Field::ContractMonths,
        Field::PartTime,
        Field::HiringMode,
        Field::ReferenceYear,
        Field::Sector,
        Field::SizeBand,
        Field::BaseWorkforce,
        Field::ReservedArt1,
        Field::CoveredArt1,
        Field::ReservedArt18,
        Field::CoveredArt18,
        Field::AgreementId,
        Field::AgreementType,
        Field::PlannedHires,
        Field::DurationMonths,
        Field::AgreementOutcome,
        Field::ExemptionPct,
        Field::ExemptedWorkers,
        Field::PeriodStart,
        Field::PeriodEnd,
        Field::SuspensionReason,
        Field::ToProvince,
        Field::EmployerObliged,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The field's name in input files.
    pub fn name(self) -> &'static str {
        match self {
            Field::EventId => "event_id",
            Field::EventType => "event_type",
            Field::OccurredAt => "occurred_at",
            Field::Province => "province",
            Field::CpiCode => "cpi_code",
            Field::PersonCf => "person_cf",
            Field::OperatorId => "operator_id",
            Field::ListType => "list_type",
            Field::Category => "category",
            Field::DisabilityPct => "disability_pct",
            Field::Naspi => "naspi",
            Field::Education => "education",
            Field::Gender => "gender",
            Field::BirthDate => "birth_date",
            Field::Agency => "agency",
            Field::Reason => "reason",
            Field::ProfilingIndex => "profiling_index",
            Field::PactId => "pact_id",
            Field::ResponsibleOperator => "responsible_operator",
            Field::EmployabilityProfile => "employability_profile",
            Field::SearchActs => "search_acts",
            Field::ContactFrequencyDays => "contact_frequency_days",
            Field::SearchProofMethod => "search_proof_method",
            Field::AvailWorkshops => "avail_workshops",
            Field::AvailTraining => "avail_training",
            Field::AvailOffers => "avail_offers",
            Field::ReviewOutcome => "review_outcome",
            Field::Group => "group",
            Field::SkillsGap => "skills_gap",
            Field::ToService => "to_service",
            Field::SupportType => "support_type",
            Field::MeasureId => "measure_id",
            Field::MeasureType => "measure_type",
            Field::EmployerId => "employer_id",
            Field::EndReason => "end_reason",
            Field::VacancyId => "vacancy_id",
            Field::Positions => "positions",
            Field::RequestType => "request_type",
            Field::AtecoSection => "ateco_section",
            Field::ProfessionCode => "profession_code",
            Field::Channel => "channel",
            Field::CloseReason => "close_reason",
            Field::ContractCode => "contract_code",
            Field::ContractMonths => "contract_months",
            Field::PartTime => "part_time",
            Field::HiringMode => "hiring_mode",
            Field::ReferenceYear => "reference_year",
            Field::Sector => "sector",
            Field::SizeBand => "size_band",
            Field::BaseWorkforce => "base_workforce",
            Field::ReservedArt1 => "reserved_art1",
            Field::CoveredArt1 => "covered_art1",
            Field::ReservedArt18 => "reserved_art18",
            Field::CoveredArt18 => "covered_art18",
            Field::AgreementId => "agreement_id",
            Field::AgreementType => "agreement_type",
            Field::PlannedHires => "planned_hires",
            Field::DurationMonths => "duration_months",
            Field::AgreementOutcome => "agreement_outcome",
            Field::ExemptionPct => "exemption_pct",
            Field::ExemptedWorkers => "exempted_workers",
            Field::PeriodStart => "period_start",
            Field::PeriodEnd => "period_end",
            Field::SuspensionReason => "suspension_reason",
            Field::ToProvince => "to_province",
            Field::EmployerObliged => "employer_obliged",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Fields that carry an identity and must never be stored, logged or quarantined raw.
    pub fn is_identifying(self) -> bool {
        matches!(
            self,
            Field::PersonCf | Field::OperatorId | Field::ResponsibleOperator | Field::EmployerId
        )
    }
}

/// Columns whose absence rejects a whole CSV file: every event needs them.
pub const REQUIRED_COLUMNS: [Field; 5] = [
    Field::EventId,
    Field::EventType,
    Field::OccurredAt,
    Field::Province,
    Field::CpiCode,
];

/// The six services of the seed document, plus placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Iscrizione,
    OrientamentoBase,
    Patto,
    OrientamentoSpecialistico,
    Accompagnamento,
    IncontroDomandaOfferta,
    Placement,
    /// The employers' side (contract version 2): obligations, agreements, exemptions.
    Employers,
}

macro_rules! event_types {
    ($($variant:ident => $name:literal, $service:ident;)*) => {
        /// The event types of the contract: 27 of the persons' side, 7 of the employers'.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            pub fn parse(s: &str) -> Option<EventType> {
                match s { $($name => Some(EventType::$variant),)* _ => None }
            }

            pub fn service(self) -> Service {
                match self { $(EventType::$variant => Service::$service,)* }
            }
        }
    };
}

event_types! {
    ApplicationSubmitted => "application_submitted", Iscrizione;
    CertificationRequested => "certification_requested", Iscrizione;
    ApplicationAccepted => "application_accepted", Iscrizione;
    ApplicationPreRejected => "application_pre_rejected", Iscrizione;
    ApplicationRejected => "application_rejected", Iscrizione;
    RegistrationCancelled => "registration_cancelled", Iscrizione;
    BasicOrientation => "basic_orientation", OrientamentoBase;
    QualitativeProfiling => "qualitative_profiling", OrientamentoBase;
    AdrInformation => "adr_information", OrientamentoBase;
    PactSigned => "pact_signed", Patto;
    PactUpdated => "pact_updated", Patto;
    PactReview => "pact_review", Patto;
    SpecialistOrientation => "specialist_orientation", OrientamentoSpecialistico;
    SkillsAssessment => "skills_assessment", OrientamentoSpecialistico;
    Referral => "referral", OrientamentoSpecialistico;
    JobSearchSupport => "job_search_support", Accompagnamento;
    MeasureStarted => "measure_started", Accompagnamento;
    TutoringMeeting => "tutoring_meeting", Accompagnamento;
    MeasureEnded => "measure_ended", Accompagnamento;
    VacancyOpened => "vacancy_opened", IncontroDomandaOfferta;
    CandidateProposed => "candidate_proposed", IncontroDomandaOfferta;
    CandidatePreselected => "candidate_preselected", IncontroDomandaOfferta;
    CandidateSelected => "candidate_selected", IncontroDomandaOfferta;
    CandidateNotSelected => "candidate_not_selected", IncontroDomandaOfferta;
    VacancyClosed => "vacancy_closed", IncontroDomandaOfferta;
    Hired => "hired", Placement;
    EmploymentEnded => "employment_ended", Placement;
    ObligationStatement => "obligation_statement", Employers;
    AgreementSigned => "agreement_signed", Employers;
    AgreementEnded => "agreement_ended", Employers;
    ExemptionGranted => "exemption_granted", Employers;
    ObligationSuspended => "obligation_suspended", Employers;
    TerritorialCompensation => "territorial_compensation", Employers;
    NumericalRequest => "numerical_request", Employers;
}

/// How a field's text is read and checked.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Free text of a bounded length (characters).
    Text {
        min: usize,
        max: usize,
    },
    /// One of a fixed list of codes (exact match).
    Enum(&'static [&'static str]),
    /// Plain digits, optionally signed, within bounds.
    Int {
        min: i64,
        max: i64,
    },
    /// Plain decimal with `.`, within bounds.
    Decimal {
        min: f64,
        max: f64,
    },
    Bool,
    Date,
    /// Person CF: 16 characters or the 11-digit temporary code.
    PersonCf,
    /// Partita IVA or 16-character CF.
    EmployerId,
    /// CO code: a capital letter then `.NN.NN`.
    ContractCode,
    /// A letter A–U.
    AtecoSection,
    /// CP2011: 1–5 dot-separated levels.
    ProfessionCode,
}

pub const LIST_TYPES: &[&str] = &["art1", "art18"];
pub const CATEGORIES: &[&str] = &[
    "invalido_civile",
    "invalido_lavoro",
    "invalido_servizio",
    "non_vedente",
    "sordo",
    "art18",
];
pub const GENDERS: &[&str] = &["M", "F"];
pub const AGENCIES: &[&str] = &["INPS", "INAIL"];
pub const REJECTION_REASONS: &[&str] = &[
    "requirements_missing",
    "documents_incomplete",
    "not_unemployed",
    "invalidity_below_threshold",
    "age_out_of_range",
    "other",
];
pub const CANCELLATION_REASONS: &[&str] = &[
    "hired",
    "own_request",
    "missed_summons",
    "refused_offer",
    "lost_requirements",
    "deceased",
    "moved",
    "other",
];
pub const EMPLOYABILITY_PROFILES: &[&str] = &["low", "medium", "high", "very_high"];
pub const SEARCH_PROOF_METHODS: &[&str] = &["in_person", "online", "email", "other"];
pub const REVIEW_OUTCOMES: &[&str] = &["on_track", "corrective_action", "no_show"];
pub const TO_SERVICES: &[&str] = &[
    "training",
    "social_services",
    "health_services",
    "other_pes",
];
pub const SUPPORT_TYPES: &[&str] = &[
    "coaching",
    "cv",
    "interview_prep",
    "self_promotion",
    "search_workshop",
];
pub const MEASURE_TYPES: &[&str] = &[
    "tirocinio",
    "work_experience",
    "borsa_lavoro",
    "training_course",
    "other",
];
pub const MEASURE_END_REASONS: &[&str] = &[
    "completed",
    "interrupted_person",
    "interrupted_host",
    "hired",
];
pub const REQUEST_TYPES: &[&str] = &[
    "numerica",
    "nominativa",
    "convenzione_art11",
    "non_obbligata",
];
pub const CHANNELS: &[&str] = &["pes_proposal", "self_application"];
pub const CLOSE_REASONS: &[&str] = &["filled", "partially_filled", "withdrawn", "expired"];
/// `convenzione_art11` (version 1) is art. 11 c. 1; version 2 adds the other convention types.
pub const HIRING_MODES: &[&str] = &[
    "numerica",
    "nominativa",
    "convenzione_art11",
    "convenzione_art11_c4",
    "convenzione_art12",
    "convenzione_art12bis",
    "convenzione_art14",
    "other",
];
pub const SECTORS: &[&str] = &["public", "private"];
/// Employees, by the bands of art. 3 c. 1 (below 15 there is no obligation).
pub const SIZE_BANDS: &[&str] = &["15_35", "36_50", "over_50"];
pub const AGREEMENT_TYPES: &[&str] = &["art11_c1", "art11_c4", "art12", "art12bis", "art14"];
pub const AGREEMENT_OUTCOMES: &[&str] = &["completed", "partial", "revoked", "expired"];
pub const SUSPENSION_REASONS: &[&str] = &[
    "cig",
    "solidarity_contract",
    "collective_dismissal",
    "crisis_procedure",
    "other",
];

/// The largest *base di computo* (and number of posts) a statement may give: well above any
/// employer's, and a bound on the rows a coverage rate counts (one per reserved post).
pub const MAX_WORKFORCE: i64 = 1_000_000;

/// The size band of a *base di computo* (`None` below 15: no obligation).
pub fn size_band_of(base_workforce: i64) -> Option<&'static str> {
    match base_workforce {
        ..15 => None,
        15..=35 => Some("15_35"),
        36..=50 => Some("36_50"),
        _ => Some("over_50"),
    }
}
pub const EMPLOYMENT_END_REASONS: &[&str] = &["resignation", "dismissal", "term_expired", "other"];

/// Whether a field is required for an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
}

use Need::{Optional as Opt, Required as Req};

const PACT_FIELDS: [(Field, Need); 9] = [
    (Field::PactId, Req),
    (Field::ResponsibleOperator, Opt),
    (Field::EmployabilityProfile, Opt),
    (Field::SearchActs, Opt),
    (Field::ContactFrequencyDays, Opt),
    (Field::SearchProofMethod, Opt),
    (Field::AvailWorkshops, Opt),
    (Field::AvailTraining, Opt),
    (Field::AvailOffers, Opt),
];

impl EventType {
    /// The type's own fields (beyond the common ones), with whether each is required.
    /// `disability_pct` and `contract_months` have conditional requirements checked separately.
    pub fn own_fields(self) -> &'static [(Field, Need)] {
        use EventType::*;
        match self {
            ApplicationSubmitted => &[
                (Field::ListType, Req),
                (Field::Category, Req),
                (Field::DisabilityPct, Opt),
                (Field::Naspi, Opt),
                (Field::Education, Opt),
                (Field::Gender, Opt),
                (Field::BirthDate, Opt),
            ],
            CertificationRequested => &[(Field::Agency, Req)],
            ApplicationAccepted | BasicOrientation | AdrInformation => &[],
            ApplicationPreRejected | ApplicationRejected | RegistrationCancelled => {
                &[(Field::Reason, Req)]
            }
            QualitativeProfiling => &[(Field::ProfilingIndex, Opt)],
            PactSigned | PactUpdated => &PACT_FIELDS,
            PactReview => &[(Field::PactId, Req), (Field::ReviewOutcome, Req)],
            SpecialistOrientation => &[(Field::Group, Opt)],
            SkillsAssessment => &[(Field::SkillsGap, Opt)],
            Referral => &[(Field::ToService, Req)],
            JobSearchSupport => &[(Field::SupportType, Req)],
            MeasureStarted => &[
                (Field::MeasureId, Req),
                (Field::MeasureType, Req),
                (Field::EmployerId, Opt),
            ],
            TutoringMeeting => &[(Field::MeasureId, Req)],
            MeasureEnded => &[(Field::MeasureId, Req), (Field::EndReason, Req)],
            VacancyOpened => &[
                (Field::VacancyId, Req),
                (Field::EmployerId, Req),
                (Field::Positions, Req),
                (Field::RequestType, Req),
                (Field::AtecoSection, Opt),
                (Field::ProfessionCode, Opt),
            ],
            CandidateProposed => &[(Field::VacancyId, Req), (Field::Channel, Req)],
            CandidatePreselected | CandidateSelected | CandidateNotSelected => {
                &[(Field::VacancyId, Req)]
            }
            VacancyClosed => &[(Field::VacancyId, Req), (Field::CloseReason, Req)],
            Hired => &[
                (Field::EmployerId, Req),
                (Field::ContractCode, Req),
                (Field::ContractMonths, Opt),
                (Field::PartTime, Opt),
                (Field::HiringMode, Req),
                (Field::VacancyId, Opt),
                (Field::EmployerObliged, Opt),
                (Field::Sector, Opt),
                (Field::AgreementId, Opt),
            ],
            EmploymentEnded => &[(Field::EmployerId, Req), (Field::EndReason, Opt)],
            ObligationStatement => &[
                (Field::EmployerId, Req),
                (Field::ReferenceYear, Req),
                (Field::Sector, Req),
                (Field::SizeBand, Req),
                (Field::BaseWorkforce, Req),
                (Field::ReservedArt1, Req),
                (Field::CoveredArt1, Req),
                (Field::ReservedArt18, Opt),
                (Field::CoveredArt18, Opt),
            ],
            AgreementSigned => &[
                (Field::EmployerId, Req),
                (Field::AgreementId, Req),
                (Field::AgreementType, Req),
                (Field::PlannedHires, Req),
                (Field::DurationMonths, Req),
            ],
            AgreementEnded => &[
                (Field::EmployerId, Req),
                (Field::AgreementId, Req),
                (Field::AgreementOutcome, Req),
            ],
            ExemptionGranted => &[
                (Field::EmployerId, Req),
                (Field::ExemptionPct, Req),
                (Field::ExemptedWorkers, Req),
                (Field::PeriodStart, Req),
                (Field::PeriodEnd, Req),
            ],
            ObligationSuspended => &[
                (Field::EmployerId, Req),
                (Field::SuspensionReason, Req),
                (Field::PeriodStart, Req),
                (Field::PeriodEnd, Req),
                (Field::Positions, Opt),
            ],
            TerritorialCompensation => &[
                (Field::EmployerId, Req),
                (Field::ToProvince, Req),
                (Field::Positions, Req),
            ],
            NumericalRequest => &[
                (Field::EmployerId, Req),
                (Field::VacancyId, Req),
                (Field::Positions, Req),
            ],
        }
    }

    /// Whether the type concerns a person (all but the vacancy's own events and the
    /// employers' side).
    pub fn has_person(self) -> bool {
        !matches!(self, EventType::VacancyOpened | EventType::VacancyClosed)
            && self.service() != Service::Employers
    }

    /// How a field is read for this type (only `reason` and `end_reason` depend on the type).
    pub fn kind_of(self, field: Field) -> Kind {
        match (self, field) {
            (EventType::RegistrationCancelled, Field::Reason) => Kind::Enum(CANCELLATION_REASONS),
            (EventType::MeasureEnded, Field::EndReason) => Kind::Enum(MEASURE_END_REASONS),
            (EventType::EmploymentEnded, Field::EndReason) => Kind::Enum(EMPLOYMENT_END_REASONS),
            _ => field_kind(field),
        }
    }
}

/// The reading rule of a field, where it does not depend on the event type.
pub fn field_kind(field: Field) -> Kind {
    match field {
        Field::EventId | Field::EventType | Field::OccurredAt | Field::Province => {
            Kind::Text { min: 1, max: 64 }
        }
        Field::CpiCode => Kind::Text { min: 1, max: 16 },
        Field::PersonCf => Kind::PersonCf,
        Field::OperatorId => Kind::Text { min: 0, max: 32 },
        Field::ListType => Kind::Enum(LIST_TYPES),
        Field::Category => Kind::Enum(CATEGORIES),
        Field::DisabilityPct => Kind::Int { min: 0, max: 100 },
        Field::Naspi
        | Field::AvailWorkshops
        | Field::AvailTraining
        | Field::AvailOffers
        | Field::Group
        | Field::SkillsGap
        | Field::PartTime => Kind::Bool,
        Field::Education => Kind::Int { min: 0, max: 8 },
        Field::Gender => Kind::Enum(GENDERS),
        Field::BirthDate => Kind::Date,
        Field::Agency => Kind::Enum(AGENCIES),
        Field::Reason => Kind::Enum(REJECTION_REASONS),
        Field::ProfilingIndex => Kind::Decimal { min: 0.0, max: 1.0 },
        Field::PactId | Field::MeasureId | Field::VacancyId => Kind::Text { min: 1, max: 64 },
        Field::ResponsibleOperator => Kind::Text { min: 1, max: 64 },
        Field::EmployabilityProfile => Kind::Enum(EMPLOYABILITY_PROFILES),
        Field::SearchActs => Kind::Int {
            min: 0,
            max: i32::MAX as i64,
        },
        Field::ContactFrequencyDays | Field::Positions | Field::ContractMonths => Kind::Int {
            min: 1,
            max: i32::MAX as i64,
        },
        Field::SearchProofMethod => Kind::Enum(SEARCH_PROOF_METHODS),
        Field::ReviewOutcome => Kind::Enum(REVIEW_OUTCOMES),
        Field::ToService => Kind::Enum(TO_SERVICES),
        Field::SupportType => Kind::Enum(SUPPORT_TYPES),
        Field::MeasureType => Kind::Enum(MEASURE_TYPES),
        Field::EmployerId => Kind::EmployerId,
        Field::EndReason => Kind::Enum(MEASURE_END_REASONS),
        Field::RequestType => Kind::Enum(REQUEST_TYPES),
        Field::AtecoSection => Kind::AtecoSection,
        Field::ProfessionCode => Kind::ProfessionCode,
        Field::Channel => Kind::Enum(CHANNELS),
        Field::CloseReason => Kind::Enum(CLOSE_REASONS),
        Field::ContractCode => Kind::ContractCode,
        Field::HiringMode => Kind::Enum(HIRING_MODES),
        Field::ReferenceYear => Kind::Int {
            min: 2000,
            max: 2100,
        },
        Field::Sector => Kind::Enum(SECTORS),
        Field::SizeBand => Kind::Enum(SIZE_BANDS),
        // The largest Italian employers have some 150,000 employees.
        Field::BaseWorkforce => Kind::Int {
            min: 15,
            max: MAX_WORKFORCE,
        },
        Field::ReservedArt1 | Field::CoveredArt1 | Field::ReservedArt18 | Field::CoveredArt18 => {
            Kind::Int {
                min: 0,
                max: i32::MAX as i64,
            }
        }
        Field::AgreementId => Kind::Text { min: 1, max: 64 },
        Field::AgreementType => Kind::Enum(AGREEMENT_TYPES),
        Field::PlannedHires | Field::ExemptedWorkers => Kind::Int {
            min: 1,
            max: MAX_WORKFORCE,
        },
        Field::DurationMonths => Kind::Int { min: 1, max: 120 },
        Field::AgreementOutcome => Kind::Enum(AGREEMENT_OUTCOMES),
        Field::ExemptionPct => Kind::Int { min: 1, max: 80 },
        Field::PeriodStart | Field::PeriodEnd => Kind::Date,
        Field::SuspensionReason => Kind::Enum(SUSPENSION_REASONS),
        // Checked against territories.csv with the rules across fields.
        Field::ToProvince => Kind::Text { min: 1, max: 64 },
        Field::EmployerObliged => Kind::Bool,
    }
}

/// A contract date, `YYYY-MM-DD`, strictly: the ingest's dates and the query parameters read
/// alike. Faster than a format-string parse on the ingest's hot path.
pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
        })
    };
    chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// A validated, pseudonymised event as the store keeps it. Codes are `&'static str` from the
/// contract's lists, so rows stay small.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub event_id: String,
    pub event_type: &'static str,
    /// Microseconds since the Unix epoch, UTC. A plain date means midnight in Rome.
    pub occurred_at: i64,
    /// The Europe/Rome calendar date, days since 1970-01-01: the date every KPI counts.
    pub occurred_date: i32,
    pub province: &'static str,
    pub region_code: &'static str,
    /// Interned: a few hundred CPIs across millions of events.
    pub cpi_code: std::sync::Arc<str>,
    /// HMAC pseudonym of the person's CF.
    pub person_id: Option<std::sync::Arc<str>>,
    pub operator_id: Option<std::sync::Arc<str>>,
    pub list_type: Option<&'static str>,
    pub category: Option<&'static str>,
    pub disability_pct: Option<i32>,
    pub naspi: Option<bool>,
    pub education: Option<i32>,
    /// Given, or derived from a 16-character CF.
    pub gender: Option<&'static str>,
    /// Given, or derived from a 16-character CF; the full birth date is never stored.
    pub birth_year: Option<i32>,
    pub agency: Option<&'static str>,
    pub reason: Option<&'static str>,
    pub profiling_index: Option<f64>,
    pub pact_id: Option<String>,
    pub responsible_operator: Option<std::sync::Arc<str>>,
    pub employability_profile: Option<&'static str>,
    pub search_acts: Option<i32>,
    pub contact_frequency_days: Option<i32>,
    pub search_proof_method: Option<&'static str>,
    pub avail_workshops: Option<bool>,
    pub avail_training: Option<bool>,
    pub avail_offers: Option<bool>,
    /// For `pact_signed`: whether (a)–(e) and the three declarations are all there.
    pub pact_complete: Option<bool>,
    pub review_outcome: Option<&'static str>,
    pub group_session: Option<bool>,
    pub skills_gap: Option<bool>,
    pub to_service: Option<&'static str>,
    pub support_type: Option<&'static str>,
    pub measure_id: Option<String>,
    pub measure_type: Option<&'static str>,
    pub employer_id: Option<std::sync::Arc<str>>,
    pub end_reason: Option<&'static str>,
    pub vacancy_id: Option<String>,
    pub positions: Option<i32>,
    pub request_type: Option<&'static str>,
    pub ateco_section: Option<String>,
    pub profession_code: Option<String>,
    pub channel: Option<&'static str>,
    pub close_reason: Option<&'static str>,
    pub contract_code: Option<String>,
    pub contract_class: Option<&'static str>,
    pub contract_months: Option<i32>,
    pub part_time: Option<bool>,
    pub hiring_mode: Option<&'static str>,
    /// For `hired`: stable per EVENTS.md.
    pub stable_hire: Option<bool>,
    // The employers' side (docs/EVENTS-employers.md).
    pub reference_year: Option<i32>,
    pub sector: Option<&'static str>,
    pub size_band: Option<&'static str>,
    pub base_workforce: Option<i32>,
    pub reserved_art1: Option<i32>,
    pub covered_art1: Option<i32>,
    pub reserved_art18: Option<i32>,
    pub covered_art18: Option<i32>,
    pub agreement_id: Option<String>,
    pub agreement_type: Option<&'static str>,
    pub planned_hires: Option<i32>,
    pub duration_months: Option<i32>,
    pub agreement_outcome: Option<&'static str>,
    pub exemption_pct: Option<i32>,
    pub exempted_workers: Option<i32>,
    /// Days since 1970-01-01, as `occurred_date`.
    pub period_start: Option<i32>,
    pub period_end: Option<i32>,
    pub suspension_reason: Option<&'static str>,
    pub to_province: Option<&'static str>,
    pub employer_obliged: Option<bool>,
    /// Keyed hash of the parsed content, to tell duplicates from conflicts.
    pub content_hash: i64,
}
