-- id: pact_reviews
-- label: Verifiche periodiche del patto
-- kind: count
-- section: 3
-- own: review_outcome
-- Rows: one per pact_review event dated in the period.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, review_outcome
FROM ev
WHERE event_type = 'pact_review'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
