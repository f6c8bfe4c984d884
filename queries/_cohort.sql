-- The evaluators' analysis file (`mirato export cohort`): one row per person and registration
-- spell (view spells), every spell of the store. The engine keeps the rows whose entry date
-- (spell_start, or pact_date with --entry pact) is in the period and whose entry territory is in
-- the filters; `crate::cohort` then replaces person_id by an export pseudonym, the dates by the
-- entry month and days from the spell start or the pact, and makes the file k-anonymous.
--
-- The engine adds the person's attributes from the latest application_submitted on or before
-- the entry date, as the KPIs take them on their counted event's date (the spell start for the
-- funnel, the pact for the outcome KPIs). A stage date is the first event of that type dated on
-- or after the spell's start and not after its end (the service_funnel rule); pact_date is the
-- spell's first pact (view spell_pacts), the cohort event of the outcome KPIs.
--
-- Outcome columns, from the pact (null for a spell without a pact):
-- - days_to_first_hire: days to the person's first employment hire (a `hired` that is not a
--   traineeship nor a work grant) on or after the pact, whatever the spell (placement_rate_N:
--   placed within N days = days_to_first_hire <= N);
-- - followup_days: obs_end - pact_date (placement_rate_N counts the row when >= N and the row
--   is not censored before N);
-- - days_to_placement / censored / censoring: time_to_placement's duration and status (view
--   pact_outcomes, the one rule of KPIS.md v2). Censored at a registration_cancelled for
--   deceased or moved dated before the hire ('cancelled'), or at obs_end without a hire
--   ('observation_end').
WITH s AS (
    SELECT person_id, start_date, start_at, end_date, end_reason, province, cpi_code,
           ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY start_at) AS spell_no
    FROM spells
),
e AS (
    SELECT person_id, occurred_date, event_type
    FROM ev
    WHERE event_type IN ('basic_orientation', 'specialist_orientation', 'measure_started',
                         'candidate_proposed', 'hired')
      -- hire_date is an employment hire's, as in the KPIs (KPIS.md v2).
      AND NOT (event_type = 'hired' AND contract_class IN ('traineeship', 'work_grant'))
),
stages AS (
    SELECT s.person_id, s.start_at,
           min(CASE WHEN e.event_type = 'basic_orientation' THEN e.occurred_date END)
               AS basic_orientation_date,
           min(CASE WHEN e.event_type = 'specialist_orientation' THEN e.occurred_date END)
               AS specialist_orientation_date,
           min(CASE WHEN e.event_type = 'measure_started' THEN e.occurred_date END)
               AS measure_start_date,
           min(CASE WHEN e.event_type = 'candidate_proposed' THEN e.occurred_date END)
               AS proposal_date,
           min(CASE WHEN e.event_type = 'hired' THEN e.occurred_date END) AS hire_date
    FROM s
    JOIN e ON e.person_id = s.person_id
        AND e.occurred_date >= s.start_date
        AND (s.end_date IS NULL OR e.occurred_date <= s.end_date)
    GROUP BY s.person_id, s.start_at
),
o AS (
    SELECT po.person_id, po.start_at, po.pact_date, po.province AS pact_province,
           po.cpi_code AS pact_cpi, po.days_to_hire, po.days_to_censor,
           CAST(obs.obs_end AS BIGINT) - CAST(po.pact_date AS BIGINT) AS followup_days
    FROM pact_outcomes po
    CROSS JOIN obs
)
SELECT
    s.person_id,
    CAST(s.spell_no AS INT) AS spell_no,
    s.province,
    s.cpi_code AS cpi,
    s.start_date AS spell_start,
    st.basic_orientation_date,
    o.pact_date,
    o.pact_province,
    o.pact_cpi,
    st.specialist_orientation_date,
    st.measure_start_date,
    st.proposal_date,
    st.hire_date,
    s.end_date AS spell_end,
    s.end_reason,
    CAST(o.days_to_hire AS INT) AS days_to_first_hire,
    CAST(o.followup_days AS INT) AS followup_days,
    CAST(CASE
        WHEN o.pact_date IS NULL THEN NULL
        WHEN o.days_to_censor IS NOT NULL THEN o.days_to_censor
        WHEN o.days_to_hire IS NOT NULL THEN o.days_to_hire
        ELSE o.followup_days
    END AS INT) AS days_to_placement,
    CASE
        WHEN o.pact_date IS NULL THEN CAST(NULL AS BOOLEAN)
        WHEN o.days_to_censor IS NOT NULL THEN TRUE
        WHEN o.days_to_hire IS NOT NULL THEN FALSE
        ELSE TRUE
    END AS censored,
    CASE
        WHEN o.pact_date IS NULL THEN CAST(NULL AS VARCHAR)
        WHEN o.days_to_censor IS NOT NULL THEN 'cancelled'
        WHEN o.days_to_hire IS NOT NULL THEN CAST(NULL AS VARCHAR)
        ELSE 'observation_end'
    END AS censoring
FROM s
LEFT JOIN stages st ON st.person_id = s.person_id AND st.start_at = s.start_at
LEFT JOIN o ON o.person_id = s.person_id AND o.start_at = s.start_at
