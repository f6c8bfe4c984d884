-- id: work_experiences_started
-- label: Tirocini e borse lavoro avviati
-- kind: count
-- section: 5
-- own: contract_class
-- Rows: one per hired event dated in the period whose contract_class is traineeship (C.01.00) or
-- work_grant (C.04.00): active-policy measures, not employment (KPIS.md v2), so the employment
-- KPIs leave them out and this one counts them. Territory and d = the event.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, contract_class
FROM ev
WHERE event_type = 'hired'
  AND contract_class IN ('traineeship', 'work_grant')
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
