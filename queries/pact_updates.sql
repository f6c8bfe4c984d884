-- id: pact_updates
-- label: Aggiornamenti del patto di servizio
-- kind: count
-- section: 3
-- Rows: one per pact_updated event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key
FROM ev
WHERE event_type = 'pact_updated'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
