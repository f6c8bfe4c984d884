-- id: exemptions_granted
-- label: Esoneri parziali autorizzati
-- kind: count
-- section: 8
-- person: no
-- unit: employer_id
-- Rows: one per exemption_granted event dated in the period (art. 5 c. 3).
SELECT province, cpi_code AS cpi, occurred_date AS d, employer_id
FROM ev
WHERE event_type = 'exemption_granted'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
