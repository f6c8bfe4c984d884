-- id: time_to_placement
-- label: Tempo all'inserimento lavorativo dal patto (curva di sopravvivenza)
-- kind: survival
-- section: 7
-- Rows: one per cohort entry as in placement_rate_N (first pact_signed of a spell dated in the
-- period; territory and d = the pact), with no follow-up condition. duration = days from the pact
-- to the end of observation of that entry; event = 1 when it ends with the person's first `hired`
-- on or after the pact date. It is censored (event = 0) at the spell's registration_cancelled when
-- the reason is not 'hired' and the cancellation is dated before that hire (a hire on the
-- cancellation's own day is still a placement), otherwise at obs_end (latest event date as of
-- as_of) when there is no hire yet.
WITH c AS (
    SELECT sp.person_id, sp.start_at, sp.pact_date, sp.province, sp.cpi_code,
           sp.end_date, sp.end_reason
    FROM spell_pacts sp
    WHERE sp.pact_date BETWEEN $from AND $to
),
h AS (
    SELECT person_id, occurred_date
    FROM ev
    WHERE event_type = 'hired'
),
fh AS (
    SELECT c.person_id, c.start_at, c.pact_date, c.province, c.cpi_code, c.end_date,
           c.end_reason, min(h.occurred_date) AS hire_date
    FROM c
    LEFT JOIN h ON h.person_id = c.person_id AND h.occurred_date >= c.pact_date
    GROUP BY c.person_id, c.start_at, c.pact_date, c.province, c.cpi_code, c.end_date,
             c.end_reason
),
o AS (
    SELECT fh.*,
           CASE
               WHEN fh.end_date IS NOT NULL AND fh.end_reason <> 'hired'
                    AND (fh.hire_date IS NULL OR fh.end_date < fh.hire_date)
                   THEN fh.end_date
               WHEN fh.hire_date IS NOT NULL THEN fh.hire_date
               ELSE obs.obs_end
           END AS stop_date,
           CASE
               WHEN fh.end_date IS NOT NULL AND fh.end_reason <> 'hired'
                    AND (fh.hire_date IS NULL OR fh.end_date < fh.hire_date)
                   THEN 0
               WHEN fh.hire_date IS NOT NULL THEN 1
               ELSE 0
           END AS event
    FROM fh
    CROSS JOIN obs
)
SELECT province, cpi_code AS cpi, pact_date AS d, person_id,
       CAST(stop_date AS BIGINT) - CAST(pact_date AS BIGINT) AS duration,
       event
FROM o
