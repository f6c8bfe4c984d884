-- id: certification_requests
-- label: Richieste di certificazioni e contatti INPS/INAIL
-- kind: count
-- section: 1
-- own: agency
-- Rows: one per certification_requested event dated in the period, with its agency (INPS or
-- INAIL); territory and d = the request.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, agency
FROM ev
WHERE event_type = 'certification_requested'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
