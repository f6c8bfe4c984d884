-- id: pact_completeness_rate
-- label: Quota di patti sottoscritti completi
-- kind: rate
-- section: 3
-- Rows: one per pact_signed event dated in the period; num = 1 when the pact is complete
-- (EVENTS.md: contents (a)-(e) present with search_acts >= 1 and the three availability
-- declarations true; the flag pact_complete is computed at ingest).
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN pact_complete THEN 1 ELSE 0 END AS num
FROM ev
WHERE event_type = 'pact_signed'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
