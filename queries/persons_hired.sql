-- id: persons_hired
-- label: Persone assunte
-- kind: count_distinct
-- section: 7
-- Rows: one per employment hire (not a traineeship nor a work grant) dated in the period
-- (distinct persons are counted); territory and
-- d = the hire, so a person hired in two provinces counts once in each and once in the total.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id
FROM ev
WHERE event_type = 'hired'
  AND contract_class NOT IN ('traineeship', 'work_grant')
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
