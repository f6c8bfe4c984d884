-- id: retention_180
-- label: Tasso di permanenza a 180 giorni dall'assunzione
-- kind: rate
-- section: 7
-- follow_up: 180
-- Rows: one per employment hire (not a traineeship nor a work grant) dated in the period with
-- hire date + 180 <= obs_end (the latest event date as of as_of); territory and d = the hire.
-- num = 1 when there is no employment_ended of the same person and employer_id dated from the
-- hire date to hire date + 180, both inclusive.
WITH h AS (
    SELECT ev.event_id, ev.province, ev.cpi_code, ev.occurred_date, ev.person_id, ev.employer_id
    FROM ev
    CROSS JOIN obs
    WHERE ev.event_type = 'hired'
      AND ev.contract_class NOT IN ('traineeship', 'work_grant')
      AND ev.occurred_date BETWEEN $from AND $to
      AND CAST(ev.occurred_date AS BIGINT) + 180 <= CAST(obs.obs_end AS BIGINT)
),
e AS (
    SELECT person_id, employer_id, occurred_date
    FROM ev
    WHERE event_type = 'employment_ended'
)
SELECT h.province, h.cpi_code AS cpi, h.occurred_date AS d, h.person_id,
       CASE WHEN count(e.person_id) = 0 THEN 1 ELSE 0 END AS num
FROM h
LEFT JOIN e ON e.person_id = h.person_id
    AND e.employer_id = h.employer_id
    AND e.occurred_date >= h.occurred_date
    AND CAST(e.occurred_date AS BIGINT) <= CAST(h.occurred_date AS BIGINT) + 180
GROUP BY h.event_id, h.province, h.cpi_code, h.occurred_date, h.person_id
