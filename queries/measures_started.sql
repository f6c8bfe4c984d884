-- id: measures_started
-- label: Misure di politica attiva avviate
-- kind: count
-- section: 5
-- own: measure_type
-- Rows: one per measure_started event dated in the period, with its measure_type.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, measure_type
FROM ev
WHERE event_type = 'measure_started'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
