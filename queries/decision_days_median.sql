-- id: decision_days_median
-- label: Giorni mediani dalla presentazione alla decisione
-- kind: median
-- section: 1
-- Rows: one per decision dated in the period; x = whole days since the person's latest
-- application_submitted on or before it (decisions with no earlier application are left out).
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
