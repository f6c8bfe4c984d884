-- id: positions_offered
-- label: Posti di lavoro offerti
-- kind: sum
-- section: 6
-- person: no
-- Rows: one per vacancy_opened event dated in the period; x = its positions.
SELECT province, cpi_code AS cpi, occurred_date AS d, vacancy_id, vacancy_record_key, CAST(positions AS BIGINT) AS x
FROM ev
WHERE event_type = 'vacancy_opened'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
