-- id: covered_posts
-- label: Posti di riserva coperti
-- kind: sum
-- section: 8
-- person: no
-- unit: employer_id
-- own: sector, size_band, quota
-- Rows: as reserved_posts; x = the covered posts, at most the reserved ones (view
-- employer_statements: coverage beyond an employer's quota covers no one else's).
SELECT s.province, s.cpi_code AS cpi, CAST($to AS DATE) AS d, s.employer_id, s.sector, s.size_band, q.quota,
       CAST(CASE q.quota WHEN 'art1' THEN s.covered_art1 ELSE s.covered_art18 END AS BIGINT) AS x
FROM employer_statements s
CROSS JOIN (VALUES ('art1'), ('art18')) AS q(quota)
WHERE s.reference_year = CAST(date_part('year', $to) AS INT)
  AND (q.quota = 'art1' OR s.reserved_art18 IS NOT NULL)
