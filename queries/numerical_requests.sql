-- id: numerical_requests
-- label: Richieste di avviamento numerico
-- kind: count
-- section: 8
-- person: no
-- unit: employer_id
-- Rows: one per numerical_request event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, employer_id
FROM ev
WHERE event_type = 'numerical_request'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
