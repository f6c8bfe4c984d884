-- id: uncovered_posts
-- label: Posti scoperti (scoperture)
-- kind: sum
-- section: 8
-- person: no
-- unit: employer_id
-- own: sector, size_band, quota
-- Rows: as reserved_posts; x = reserved minus covered posts (never below 0), so that
-- covered_posts + uncovered_posts = reserved_posts in every cell.
SELECT s.province, s.cpi_code AS cpi, CAST($to AS DATE) AS d, s.employer_id, s.sector, s.size_band, q.quota,
       CAST(CASE q.quota WHEN 'art1' THEN s.reserved_art1 - s.covered_art1
                         ELSE s.reserved_art18 - s.covered_art18 END AS BIGINT) AS x
FROM employer_statements s
CROSS JOIN (VALUES ('art1'), ('art18')) AS q(quota)
WHERE s.reference_year = CAST(date_part('year', $to) AS INT)
  AND (q.quota = 'art1' OR s.reserved_art18 IS NOT NULL)
