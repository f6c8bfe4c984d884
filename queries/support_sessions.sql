-- id: support_sessions
-- label: Interventi di accompagnamento alla ricerca attiva
-- kind: count
-- section: 5
-- own: support_type
-- Rows: one per job_search_support event dated in the period, with its support_type.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, support_type
FROM ev
WHERE event_type = 'job_search_support'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
