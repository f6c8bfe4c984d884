-- id: quota_coverage_rate
-- label: Tasso di copertura della quota di riserva
-- kind: rate
-- section: 8
-- person: no
-- unit: employer_id
-- own: sector, size_band, quota
-- Rows: one per reserved post of the statements of reserved_posts (post 1 to reserved, per
-- statement and quota); num = 1 for the first `covered` of them. The rate is covered_posts /
-- reserved_posts; a statement with no reserved post has no row.
SELECT province, cpi, d, employer_id, sector, size_band, quota,
       CASE WHEN post <= covered THEN 1 ELSE 0 END AS num
FROM (
    SELECT s.province, s.cpi_code AS cpi, CAST($to AS DATE) AS d, s.employer_id, s.sector, s.size_band, q.quota,
           CASE q.quota WHEN 'art1' THEN s.covered_art1 ELSE s.covered_art18 END AS covered,
           unnest(generate_series(1, CAST(CASE q.quota WHEN 'art1' THEN s.reserved_art1
                                                ELSE s.reserved_art18 END AS BIGINT))) AS post
    FROM employer_statements s
    CROSS JOIN (VALUES ('art1'), ('art18')) AS q(quota)
    WHERE s.reference_year = CAST(date_part('year', $to) AS INT)
      AND CASE q.quota WHEN 'art1' THEN s.reserved_art1 ELSE s.reserved_art18 END > 0
) p
