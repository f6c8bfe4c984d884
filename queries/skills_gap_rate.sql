-- id: skills_gap_rate
-- label: Quota di bilanci con fabbisogni formativi
-- kind: rate
-- section: 4
-- not_stated: yes
-- Rows: one per skills_assessment event dated in the period; num = 1 when it states a gap.
-- An assessment that leaves skills_gap empty says nothing about a gap: stated = 0 keeps it out
-- of both sides (KPIS.md v2) and counts it in the output's `not_stated`.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN skills_gap THEN 1 ELSE 0 END AS num,
       CASE WHEN skills_gap IS NULL THEN 0 ELSE 1 END AS stated
FROM ev
WHERE event_type = 'skills_assessment'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
