-- id: obligation_suspensions
-- label: Sospensioni degli obblighi
-- kind: count
-- section: 8
-- person: no
-- unit: employer_id
-- own: suspension_reason
-- Rows: one per obligation_suspended event dated in the period (art. 3 c. 5).
SELECT province, cpi_code AS cpi, occurred_date AS d, employer_id, suspension_reason
FROM ev
WHERE event_type = 'obligation_suspended'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
