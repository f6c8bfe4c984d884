-- id: applications_accepted
-- label: Istanze accolte
-- kind: count
-- section: 1
-- Rows: one per application_accepted event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key
FROM ev
WHERE event_type = 'application_accepted'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
