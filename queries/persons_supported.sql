-- id: persons_supported
-- label: Persone accompagnate nella ricerca attiva del lavoro
-- kind: count_distinct
-- section: 5
-- own: support_type
-- Rows: one per job_search_support event dated in the period, with its support_type; the engine
-- counts distinct persons (a person supported in two territories, or in two ways, counts once in
-- each and once in the total).
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, support_type
FROM ev
WHERE event_type = 'job_search_support'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
