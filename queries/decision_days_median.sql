-- id: decision_days_median
-- label: Giorni mediani dalla presentazione alla decisione
-- kind: median
-- section: 1
-- Rows: one per decision dated in the period; x = whole days since the person's latest
-- application_submitted on or before it (decisions with no earlier application are left out).
-- The days are computed once per `as_of` in the shared view decisions.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, days AS x
FROM decisions
WHERE occurred_date BETWEEN $from AND $to
