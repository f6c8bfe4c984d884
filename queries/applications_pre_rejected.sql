-- id: applications_pre_rejected
-- label: Preavvisi di rigetto
-- kind: count
-- section: 1
-- own: reason
-- Rows: one per application_pre_rejected event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, reason
FROM ev
WHERE event_type = 'application_pre_rejected'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
