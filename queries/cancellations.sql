-- id: cancellations
-- label: Cancellazioni dalla lista
-- kind: count
-- section: 1
-- own: reason
-- Rows: one per registration_cancelled event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, reason
FROM ev
WHERE event_type = 'registration_cancelled'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
