-- id: skills_gap_rate
-- label: Quota di bilanci con fabbisogni formativi
-- kind: rate
-- section: 4
-- Rows: one per skills_assessment event dated in the period that states skills_gap (true or
-- false); num = 1 when it is true. An assessment that leaves skills_gap empty says nothing
-- about a gap: it is out of both sides (KPIS.md v2), and `skills_assessments` still counts it.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN skills_gap THEN 1 ELSE 0 END AS num
FROM ev
WHERE event_type = 'skills_assessment'
  AND skills_gap IS NOT NULL
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
