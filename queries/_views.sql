-- Shared views, created before every KPI query on top of `ev`: the stored events as of `as_of`
-- (only rows ingested at or before it, of committed batches).
-- Statements are separated by a semicolon at the end of a line.

-- Person attributes: each application_submitted, valid from its date until the person's next
-- application (exclusive). A KPI's row takes the application with
-- app_date <= d AND (next_app_date IS NULL OR next_app_date > d): the latest one on or before d.
CREATE VIEW apps AS
WITH a AS (
    SELECT person_id, occurred_date, occurred_at, event_id, gender, birth_year, category,
           list_type, disability_pct, education, naspi, province, cpi_code
    FROM ev
    WHERE event_type = 'application_submitted'
),
-- The next application of the same person in (occurred_at, event_id) order (the order of
-- their dates too), by a self-join: most persons have one or two applications, so this is
-- cheaper than a window that sorts every application by person.
nexts AS (
    SELECT x.person_id, x.occurred_at, x.event_id, min(y.occurred_date) AS next_app_date
    FROM a x
    JOIN a y ON y.person_id = x.person_id
        AND (y.occurred_at > x.occurred_at
             OR (y.occurred_at = x.occurred_at AND y.event_id > x.event_id))
    GROUP BY x.person_id, x.occurred_at, x.event_id
)
SELECT
    a.person_id,
    a.event_id AS app_event_id,
    a.occurred_date AS app_date,
    a.occurred_at AS app_at,
    a.gender,
    a.birth_year,
    a.category,
    a.list_type,
    a.disability_pct,
    a.education,
    a.naspi,
    a.province,
    a.cpi_code,
    n.next_app_date
FROM a
LEFT JOIN nexts n ON n.person_id = a.person_id AND n.occurred_at = a.occurred_at
    AND n.event_id = a.event_id;

-- Each application with the date of the first decision (accepted or rejected) dated on or after
-- it, null when none yet: pending_applications reads the applications undecided at `to` off it
-- instead of checking every application against every decision for each query.
CREATE VIEW app_decisions AS
WITH d AS (
    SELECT person_id, occurred_date
    FROM ev
    WHERE event_type IN ('application_accepted', 'application_rejected')
)
SELECT a.person_id, a.app_event_id, a.app_date, a.next_app_date, a.province, a.cpi_code,
       min(d.occurred_date) AS first_decision_date
FROM apps a
LEFT JOIN d ON d.person_id = a.person_id AND d.occurred_date >= a.app_date
GROUP BY a.person_id, a.app_event_id, a.app_date, a.next_app_date, a.province, a.cpi_code;

-- Each decision (accepted or rejected) with the whole days since the person's latest
-- application on or before it; decisions with no earlier application are left out.
-- decision_days_median and decisions_within_30d_rate read their period off it.
CREATE VIEW decisions AS
WITH dec AS (
    SELECT province, cpi_code, occurred_date, person_id
    FROM ev
    WHERE event_type IN ('application_accepted', 'application_rejected')
)
SELECT dec.province, dec.cpi_code, dec.occurred_date, dec.person_id,
       CAST(dec.occurred_date AS BIGINT) - CAST(a.app_date AS BIGINT) AS days
FROM dec
JOIN apps a ON a.person_id = dec.person_id
    AND a.app_date <= dec.occurred_date
    AND (a.next_app_date IS NULL OR a.next_app_date > dec.occurred_date);

-- Registration spells. A spell starts at an application_accepted and ends at the person's next
-- registration_cancelled (the first one strictly after the acceptance's instant; with plain dates
-- both are midnight, so a cancellation dated the same day as an acceptance closes the earlier
-- spell, not the new one). Acceptances inside an open spell do not start a new one.
CREATE VIEW spells AS
WITH acc AS (
    SELECT person_id, occurred_date, occurred_at, province, cpi_code
    FROM ev WHERE event_type = 'application_accepted'
),
canc AS (
    SELECT person_id, occurred_date, occurred_at, reason
    FROM ev WHERE event_type = 'registration_cancelled'
),
ends AS (
    SELECT a.person_id, a.occurred_at AS start_at, min(c.occurred_at) AS end_at
    FROM acc a
    LEFT JOIN canc c ON c.person_id = a.person_id AND c.occurred_at > a.occurred_at
    GROUP BY a.person_id, a.occurred_at
),
firsts AS (
    SELECT person_id, end_at, min(start_at) AS start_at
    FROM ends
    GROUP BY person_id, end_at
)
SELECT
    f.person_id,
    min(a.occurred_date) AS start_date,
    f.start_at,
    min(a.province) AS province,
    min(a.cpi_code) AS cpi_code,
    min(c.occurred_date) AS end_date,
    f.end_at,
    min(c.reason) AS end_reason
FROM firsts f
JOIN acc a ON a.person_id = f.person_id AND a.occurred_at = f.start_at
LEFT JOIN canc c ON c.person_id = f.person_id AND c.occurred_at = f.end_at
GROUP BY f.person_id, f.start_at, f.end_at;

-- The first pact_signed of each spell (on or after its start date, not after its end date), with
-- the pact's own territory: the pact is the cohort event of the outcome KPIs.
CREATE VIEW spell_pacts AS
WITH p AS (
    SELECT person_id, occurred_date, occurred_at, province, cpi_code
    FROM ev WHERE event_type = 'pact_signed'
),
firsts AS (
    SELECT s.person_id, s.start_at, min(p.occurred_at) AS pact_at
    FROM spells s
    JOIN p ON p.person_id = s.person_id
        AND p.occurred_date >= s.start_date
        AND (s.end_date IS NULL OR p.occurred_date <= s.end_date)
    GROUP BY s.person_id, s.start_at
)
SELECT
    s.person_id,
    s.start_date,
    s.start_at,
    s.end_date,
    s.end_reason,
    min(p.occurred_date) AS pact_date,
    f.pact_at,
    min(p.province) AS province,
    min(p.cpi_code) AS cpi_code
FROM firsts f
JOIN spells s ON s.person_id = f.person_id AND s.start_at = f.start_at
JOIN p ON p.person_id = f.person_id AND p.occurred_at = f.pact_at
GROUP BY s.person_id, s.start_date, s.start_at, s.end_date, s.end_reason, f.pact_at;

-- The first basic_orientation of each spell (on or after its start date, not after its end
-- date), with its territory. Computed once per as_of, so days_to_orientation_median only reads
-- its period off it (a tile's two periods, a page's filters) instead of joining every spell with
-- every orientation each time.
CREATE VIEW spell_orientations AS
SELECT
    s.person_id,
    s.start_at,
    s.start_date,
    first_value(o.province ORDER BY o.occurred_at, o.event_id) AS province,
    first_value(o.cpi_code ORDER BY o.occurred_at, o.event_id) AS cpi_code,
    first_value(o.occurred_date ORDER BY o.occurred_at, o.event_id) AS occurred_date
FROM spells s
JOIN ev o ON o.person_id = s.person_id
    AND o.event_type = 'basic_orientation'
    AND o.occurred_date >= s.start_date
    AND (s.end_date IS NULL OR o.occurred_date <= s.end_date)
GROUP BY s.person_id, s.start_at, s.start_date;

-- The observation end: the latest event date in the data as of as_of.
CREATE VIEW obs AS
SELECT max(occurred_date) AS obs_end FROM ev;

-- Each outcome-cohort entry (the first pact of a registration spell) with the one placement
-- event and the one censoring rule of KPIS.md v2, which the placement rates, time_to_placement
-- and the cohort file all read off this view:
-- - days_to_hire: whole days from the pact to the person's first employment hire (a `hired`
--   whose contract_class is not traineeship nor work_grant) dated on or after it, in any spell;
-- - days_to_censor: whole days to the person's first registration_cancelled for deceased or
--   moved dated on or after the pact and before that hire (a cancellation for any other reason
--   does not censor: the person stays at risk).
-- Null when there is none (yet).
CREATE VIEW pact_outcomes AS
WITH hires AS (
    SELECT sp.person_id, sp.start_at, min(h.occurred_date) AS hire_date
    FROM spell_pacts sp
    JOIN ev h ON h.person_id = sp.person_id
        AND h.event_type = 'hired'
        AND h.contract_class NOT IN ('traineeship', 'work_grant')
        AND h.occurred_date >= sp.pact_date
    GROUP BY sp.person_id, sp.start_at
),
exits AS (
    SELECT sp.person_id, sp.start_at, min(x.occurred_date) AS exit_date
    FROM spell_pacts sp
    JOIN ev x ON x.person_id = sp.person_id
        AND x.event_type = 'registration_cancelled'
        AND x.reason IN ('deceased', 'moved')
        AND x.occurred_date >= sp.pact_date
    GROUP BY sp.person_id, sp.start_at
)
SELECT
    sp.person_id,
    sp.start_at,
    sp.pact_date,
    sp.province,
    sp.cpi_code,
    CAST(h.hire_date AS BIGINT) - CAST(sp.pact_date AS BIGINT) AS days_to_hire,
    CASE WHEN x.exit_date IS NOT NULL AND (h.hire_date IS NULL OR x.exit_date < h.hire_date)
         THEN CAST(x.exit_date AS BIGINT) - CAST(sp.pact_date AS BIGINT)
    END AS days_to_censor
FROM spell_pacts sp
LEFT JOIN hires h ON h.person_id = sp.person_id AND h.start_at = sp.start_at
LEFT JOIN exits x ON x.person_id = sp.person_id AND x.start_at = sp.start_at;

-- Each measure_started with the date of the first measure_ended of the same measure and person
-- dated on or after it (null when there is none yet): persons_in_measure reads the measures open
-- at `to` off it, instead of checking every start against every end for each query.
CREATE VIEW measure_starts AS
WITH s AS (
    SELECT event_id, person_id, measure_id, occurred_at, occurred_date, province, cpi_code
    FROM ev WHERE event_type = 'measure_started'
),
e AS (
    SELECT person_id, measure_id, occurred_date
    FROM ev WHERE event_type = 'measure_ended'
)
SELECT s.event_id, s.person_id, s.occurred_at, s.occurred_date, s.province, s.cpi_code,
       min(e.occurred_date) AS first_end_date
FROM s
LEFT JOIN e ON e.measure_id = s.measure_id AND e.person_id = s.person_id
    AND e.occurred_date >= s.occurred_date
GROUP BY s.event_id, s.person_id, s.occurred_at, s.occurred_date, s.province, s.cpi_code;

-- Each measure_ended with its measure's type and its number of tutoring meetings. The type
-- comes from the measure_started of the same measure_id and person: the latest one on or before
-- the end, else the earliest after it; null when the start is not in the data. The meetings are
-- the tutoring_meeting events of the same measure_id and person, whatever their date.
-- measure_completion_rate and tutoring_per_measure read their period off it.
CREATE VIEW measure_ends AS
WITH ended AS (
    SELECT event_id, province, cpi_code, occurred_date, occurred_at, person_id, measure_id,
           end_reason
    FROM ev
    WHERE event_type = 'measure_ended'
),
typed AS (
    SELECT e.event_id, s.measure_type,
           ROW_NUMBER() OVER (
               PARTITION BY e.event_id
               ORDER BY CASE WHEN s.occurred_at <= e.occurred_at THEN 0 ELSE 1 END,
                        CASE WHEN s.occurred_at <= e.occurred_at
                             THEN -CAST(s.occurred_date AS BIGINT)
                             ELSE CAST(s.occurred_date AS BIGINT) END,
                        s.event_id
           ) AS rn
    FROM ended e
    JOIN ev s ON s.event_type = 'measure_started'
        AND s.measure_id = e.measure_id AND s.person_id = e.person_id
),
tut AS (
    SELECT measure_id, person_id, count(*) AS n
    FROM ev
    WHERE event_type = 'tutoring_meeting'
    GROUP BY measure_id, person_id
)
SELECT e.event_id, e.province, e.cpi_code, e.occurred_date, e.person_id, e.end_reason,
       t.measure_type, coalesce(n.n, 0) AS tutoring_meetings
FROM ended e
LEFT JOIN typed t ON t.event_id = e.event_id AND t.rn = 1
LEFT JOIN tut n ON n.measure_id = e.measure_id AND n.person_id = e.person_id;

-- Each (vacancy, person) pair's first candidate_proposed and first candidate_preselected (one row
-- per pair and step, `step` the event type), with the territory of that first event and whether
-- the pair took the next step (candidate_preselected after a proposal, candidate_selected after
-- a preselection) 0 to 60 days after it, both ends included (KPIS.md v2). The pair rates read
-- their period and the follow-up off it instead of collecting pairs from all events each query.
CREATE VIEW pair_steps AS
WITH firsts AS (
    SELECT vacancy_id, person_id, event_type AS step,
           CASE event_type WHEN 'candidate_proposed' THEN 'candidate_preselected'
                ELSE 'candidate_selected' END AS next_step,
           first_value(province ORDER BY occurred_at, event_id) AS province,
           first_value(cpi_code ORDER BY occurred_at, event_id) AS cpi_code,
           min(occurred_date) AS first_date
    FROM ev
    WHERE event_type IN ('candidate_proposed', 'candidate_preselected')
    GROUP BY vacancy_id, person_id, event_type
),
followed AS (
    SELECT DISTINCT f.vacancy_id, f.person_id, f.step
    FROM firsts f
    JOIN ev n ON n.vacancy_id = f.vacancy_id AND n.person_id = f.person_id
        AND n.event_type = f.next_step
        AND n.occurred_date >= f.first_date
        AND CAST(n.occurred_date AS BIGINT) <= CAST(f.first_date AS BIGINT) + 60
    WHERE n.event_type IN ('candidate_preselected', 'candidate_selected')
)
SELECT f.vacancy_id, f.person_id, f.step, f.province, f.cpi_code, f.first_date,
       x.person_id IS NOT NULL AS followed
FROM firsts f
LEFT JOIN followed x ON x.vacancy_id = f.vacancy_id AND x.person_id = f.person_id
    AND x.step = f.step;

-- Each registration spell with the stages of the service funnel it reached: an event of the
-- person dated on or after the spell's start date, not after its end date (the cancellation's
-- date) and not after obs_end. service_funnel reads the spells starting in its period off it.
CREATE VIEW spell_stages AS
WITH e AS (
    SELECT ev.person_id, ev.occurred_date, ev.event_type
    FROM ev
    CROSS JOIN obs
    WHERE ev.event_type IN ('basic_orientation', 'pact_signed', 'measure_started',
                            'candidate_proposed', 'hired')
      -- The hired stage counts employment hires only (KPIS.md v2).
      AND NOT (ev.event_type = 'hired'
               AND ev.contract_class IN ('traineeship', 'work_grant'))
      AND ev.occurred_date <= obs.obs_end
)
SELECT s.person_id, s.start_at, s.start_date, s.province, s.cpi_code,
       max(CASE WHEN e.event_type = 'basic_orientation' THEN 1 ELSE 0 END) AS s_basic_orientation,
       max(CASE WHEN e.event_type = 'pact_signed' THEN 1 ELSE 0 END) AS s_pact_signed,
       max(CASE WHEN e.event_type IN ('measure_started', 'candidate_proposed') THEN 1 ELSE 0 END)
           AS s_measure_or_proposal,
       max(CASE WHEN e.event_type = 'hired' THEN 1 ELSE 0 END) AS s_hired
FROM spells s
LEFT JOIN e ON e.person_id = s.person_id
    AND e.occurred_date >= s.start_date
    AND (s.end_date IS NULL OR e.occurred_date <= s.end_date)
GROUP BY s.person_id, s.start_at, s.start_date, s.province, s.cpi_code;

-- Each pact_signed and pact_updated with the dates of the person's next pact event, next
-- pact_signed and next event giving a contact frequency (in (occurred_at, event_id) order, whose
-- dates follow; null when none). The person's latest event of a kind up to `to` is then the one
-- dated on or before `to` whose next one of that kind is not: overdue_reviews filters this view
-- instead of ordering every pact event of every person for each query.
CREATE VIEW pact_events AS
WITH p AS (
    SELECT person_id, occurred_at, event_id, occurred_date, event_type,
           contact_frequency_days AS f, province, cpi_code
    FROM ev
    WHERE event_type IN ('pact_signed', 'pact_updated')
),
nexts AS (
    SELECT x.event_id,
           min(y.occurred_date) AS next_date,
           min(y.occurred_date) FILTER (WHERE y.event_type = 'pact_signed') AS next_signed_date,
           min(y.occurred_date) FILTER (WHERE y.f IS NOT NULL) AS next_f_date
    FROM p x
    JOIN p y ON y.person_id = x.person_id
        AND (y.occurred_at > x.occurred_at
             OR (y.occurred_at = x.occurred_at AND y.event_id > x.event_id))
    GROUP BY x.event_id
)
SELECT p.person_id, p.occurred_date, p.event_type = 'pact_signed' AS signed, p.f, p.province,
       p.cpi_code, n.next_date, n.next_signed_date, n.next_f_date
FROM p
LEFT JOIN nexts n ON n.event_id = p.event_id;

-- The longest contact frequency given on any pact (0 when none): overdue_reviews only reads the
-- reviews of the last this-many days before `to`, since an older review cannot make anyone's
-- contact recent enough. A `param_` view: bound as a literal, so files and row groups prune.
-- Capped at 4,000,000 days (some 10,950 years): event dates have four-digit years, so from any
-- `to` the window then still reaches before every event, and `to` minus it stays a valid date
-- (a frequency of a billion days would otherwise leave no valid window start at all).
CREATE VIEW param_max_contact_days AS
SELECT CAST(least(coalesce(max(contact_frequency_days), 0), 4000000) AS INT) AS days
FROM ev
WHERE event_type IN ('pact_signed', 'pact_updated');

-- The employers' side (docs/EVENTS-employers.md). Each employer's latest obligation_statement
-- for a province and reference year (latest occurred_at, then the greater event_id): a corrected
-- statement replaces the one before. Covered posts beyond the quota cover no one else's quota:
-- covered = least(covered, reserved), so that covered and uncovered add up to the quota.
CREATE VIEW employer_statements AS
SELECT province, cpi_code, employer_id, reference_year, sector, size_band, base_workforce,
       reserved_art1, least(covered_art1, reserved_art1) AS covered_art1,
       reserved_art18, least(covered_art18, reserved_art18) AS covered_art18
FROM (
    SELECT province, cpi_code, employer_id, reference_year, sector, size_band, base_workforce,
           reserved_art1, covered_art1, reserved_art18, covered_art18,
           row_number() OVER (PARTITION BY employer_id, province, reference_year
                              ORDER BY occurred_at DESC, event_id DESC) AS rn
    FROM ev
    WHERE event_type = 'obligation_statement'
) s
WHERE rn = 1;

-- Each agreement: its terms from the latest agreement_signed of its agreement_id (a resent
-- signature corrects them), its signature date from the earliest (a correction arrives later
-- than the signing); its first agreement_ended dated on or after the signature (null while it
-- runs); and the hires made under it (an employment hire, as in hires, naming its agreement_id,
-- dated from the signature to the end): all of them, and those by the end, capped at the planned
-- hires.
CREATE VIEW employer_agreements AS
WITH s AS (
    SELECT agreement_id, employer_id, province, cpi_code, agreement_type, planned_hires,
           duration_months
    FROM (
        SELECT agreement_id, employer_id, province, cpi_code, agreement_type, planned_hires,
               duration_months,
               row_number() OVER (PARTITION BY agreement_id
                                  ORDER BY occurred_at DESC, event_id DESC) AS rn
        FROM ev
        WHERE event_type = 'agreement_signed'
    ) x
    WHERE rn = 1
),
first_signed AS (
    SELECT agreement_id, min(occurred_date) AS signed_date
    FROM ev
    WHERE event_type = 'agreement_signed'
    GROUP BY agreement_id
),
e AS (
    SELECT agreement_id, ended_date, agreement_outcome
    FROM (
        SELECT f.agreement_id, x.occurred_date AS ended_date, x.agreement_outcome,
               row_number() OVER (PARTITION BY f.agreement_id
                                  ORDER BY x.occurred_at, x.event_id) AS rn
        FROM first_signed f
        JOIN ev x ON x.agreement_id = f.agreement_id
            AND x.event_type = 'agreement_ended'
            AND x.occurred_date >= f.signed_date
    ) y
    WHERE rn = 1
),
h AS (
    SELECT agreement_id, occurred_date
    FROM ev
    WHERE event_type = 'hired' AND agreement_id IS NOT NULL
      AND contract_class NOT IN ('traineeship', 'work_grant')
)
SELECT s.agreement_id, s.employer_id, s.province, s.cpi_code, f.signed_date, s.agreement_type,
       s.planned_hires, s.duration_months, e.ended_date, e.agreement_outcome,
       CAST(count(h.agreement_id) AS INT) AS hires,
       CAST(least(count(h.agreement_id) FILTER (WHERE h.occurred_date <= e.ended_date),
                  s.planned_hires) AS INT) AS hires_by_end
FROM s
JOIN first_signed f ON f.agreement_id = s.agreement_id
LEFT JOIN e ON e.agreement_id = s.agreement_id
LEFT JOIN h ON h.agreement_id = s.agreement_id AND h.occurred_date >= f.signed_date
    AND (e.ended_date IS NULL OR h.occurred_date <= e.ended_date)
GROUP BY s.agreement_id, s.employer_id, s.province, s.cpi_code, f.signed_date, s.agreement_type,
         s.planned_hires, s.duration_months, e.ended_date, e.agreement_outcome;
