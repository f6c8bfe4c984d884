-- id: basic_orientations
-- label: Colloqui di orientamento di base
-- kind: count
-- section: 2
-- Rows: one per basic_orientation event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key
FROM ev
WHERE event_type = 'basic_orientation'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
