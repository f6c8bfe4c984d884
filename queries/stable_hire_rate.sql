-- id: stable_hire_rate
-- label: Quota di assunzioni stabili
-- kind: rate
-- section: 7
-- Rows: one per employment hire (not a traineeship nor a work grant) dated in the period;
-- num = 1 when the hire is stable (EVENTS.md: A.01.00, apprenticeship A.03.*, or fixed-term
-- A.02.* with contract_months >= 6; the flag is set at ingest).
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN stable_hire THEN 1 ELSE 0 END AS num
FROM ev
WHERE event_type = 'hired'
  AND contract_class NOT IN ('traineeship', 'work_grant')
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
