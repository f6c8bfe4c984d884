-- id: service_funnel
-- label: Percorso dei servizi (funnel dall'iscrizione all'assunzione)
-- kind: funnel
-- section: 7
-- Rows: one per registration spell starting in the period (view spells); territory and d = the
-- acceptance that starts it. A stage is reached by an event of the person dated on or after the
-- spell's start date, not after its end date (the cancellation's date) and not after obs_end:
-- s_accepted = 1 (every spell); s_basic_orientation; s_pact_signed; s_measure_or_proposal
-- (measure_started or candidate_proposed); s_hired. A person with two spells starting in the
-- period is counted once per spell.
WITH s AS (
    SELECT person_id, start_at, start_date, end_date, province, cpi_code
    FROM spells
    WHERE start_date BETWEEN $from AND $to
),
e AS (
    SELECT ev.person_id, ev.occurred_date, ev.event_type
    FROM ev
    CROSS JOIN obs
    WHERE ev.event_type IN ('basic_orientation', 'pact_signed', 'measure_started',
                            'candidate_proposed', 'hired')
      AND ev.occurred_date <= obs.obs_end
)
SELECT s.province, s.cpi_code AS cpi, s.start_date AS d, s.person_id,
       1 AS s_accepted,
       max(CASE WHEN e.event_type = 'basic_orientation' THEN 1 ELSE 0 END) AS s_basic_orientation,
       max(CASE WHEN e.event_type = 'pact_signed' THEN 1 ELSE 0 END) AS s_pact_signed,
       max(CASE WHEN e.event_type IN ('measure_started', 'candidate_proposed') THEN 1 ELSE 0 END)
           AS s_measure_or_proposal,
       max(CASE WHEN e.event_type = 'hired' THEN 1 ELSE 0 END) AS s_hired
FROM s
LEFT JOIN e ON e.person_id = s.person_id
    AND e.occurred_date >= s.start_date
    AND (s.end_date IS NULL OR e.occurred_date <= s.end_date)
GROUP BY s.person_id, s.start_at, s.start_date, s.province, s.cpi_code
