-- id: acceptance_rate
-- label: Tasso di accoglimento delle istanze
-- kind: rate
-- section: 1
-- Rows: one per decision (accepted or rejected) dated in the period; num = 1 when accepted.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN event_type = 'application_accepted' THEN 1 ELSE 0 END AS num
FROM ev
WHERE event_type IN ('application_accepted', 'application_rejected')
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
