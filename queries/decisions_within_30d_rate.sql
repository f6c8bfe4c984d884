-- id: decisions_within_30d_rate
-- label: Quota di decisioni entro 30 giorni
-- kind: rate
-- section: 1
-- Rows: the decisions of decision_days_median; num = 1 when taken at most 30 days after the
-- application (the default term of L. 241/1990 art. 2).
-- The days are computed once per `as_of` in the shared view decisions.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN days <= 30 THEN 1 ELSE 0 END AS num
FROM decisions
WHERE occurred_date BETWEEN $from AND $to
