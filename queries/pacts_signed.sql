-- id: pacts_signed
-- label: Patti di servizio sottoscritti
-- kind: count
-- section: 3
-- Rows: one per pact_signed event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key
FROM ev
WHERE event_type = 'pact_signed'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
