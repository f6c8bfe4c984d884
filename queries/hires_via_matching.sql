-- id: hires_via_matching
-- label: Assunzioni da incontro domanda/offerta
-- kind: count
-- section: 6
-- Rows: one per employment hire (not a traineeship nor a work grant) dated in the period that
-- names a vacancy_id.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key
FROM ev
WHERE event_type = 'hired'
  AND contract_class NOT IN ('traineeship', 'work_grant')
  AND vacancy_id IS NOT NULL AND vacancy_id <> ''
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
