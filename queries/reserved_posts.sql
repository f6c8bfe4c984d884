-- id: reserved_posts
-- label: Quota di riserva (posti)
-- kind: sum
-- section: 8
-- person: no
-- unit: employer_id
-- own: sector, size_band, quota
-- Rows: one per latest statement (view employer_statements) of the year `to` falls in (the
-- obligations in force at the end of the period, as obliged_employers; d = `to`), and per quota
-- it states: art1 (persons with disabilities, art. 1) and
-- art18 (other protected categories, art. 18 c. 2, when stated); x = the reserved posts.
SELECT s.province, s.cpi_code AS cpi, CAST($to AS DATE) AS d, s.employer_id, s.sector, s.size_band, q.quota,
       CAST(CASE q.quota WHEN 'art1' THEN s.reserved_art1 ELSE s.reserved_art18 END AS BIGINT) AS x
FROM employer_statements s
CROSS JOIN (VALUES ('art1'), ('art18')) AS q(quota)
WHERE s.reference_year = CAST(date_part('year', $to) AS INT)
  AND (q.quota = 'art1' OR s.reserved_art18 IS NOT NULL)
