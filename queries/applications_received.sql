-- id: applications_received
-- label: Istanze presentate
-- kind: count
-- section: 1
-- Rows: one per application_submitted event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key
FROM ev
WHERE event_type = 'application_submitted'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
