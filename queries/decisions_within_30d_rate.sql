-- id: decisions_within_30d_rate
-- label: Quota di decisioni entro 30 giorni
-- kind: rate
-- section: 1
-- Rows: the decisions of decision_days_median; num = 1 when taken at most 30 days after the
-- application (the default term of L. 241/1990 art. 2).
SELECT province, cpi, d, person_id, CASE WHEN x <= 30 THEN 1 ELSE 0 END AS num
FROM (
WITH dec AS (
    SELECT province, cpi_code, occurred_date, person_id
    FROM ev
    WHERE event_type IN ('application_accepted', 'application_rejected')
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
)
SELECT dec.province, dec.cpi_code AS cpi, dec.occurred_date AS d, dec.person_id,
       CAST(dec.occurred_date AS BIGINT) - CAST(a.app_date AS BIGINT) AS x
FROM dec
JOIN apps a ON a.person_id = dec.person_id
    AND a.app_date <= dec.occurred_date
    AND (a.next_app_date IS NULL OR a.next_app_date > dec.occurred_date)
) t
