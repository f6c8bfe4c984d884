-- id: skills_assessments
-- label: Bilanci delle competenze
-- kind: count
-- section: 4
-- Rows: one per skills_assessment event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key
FROM ev
WHERE event_type = 'skills_assessment'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
