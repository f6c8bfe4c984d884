-- id: persons_oriented
-- label: Persone orientate
-- kind: count_distinct
-- section: 2
-- Rows: one per basic_orientation event dated in the period; the engine counts distinct persons
-- (a person oriented in two territories counts once in each, once in the total).
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id
FROM ev
WHERE event_type = 'basic_orientation'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
