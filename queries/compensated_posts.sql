-- id: compensated_posts
-- label: Posti in compensazione territoriale
-- kind: sum
-- section: 8
-- person: no
-- unit: employer_id
-- own: to_province
-- Rows: one per territorial_compensation event dated in the period (art. 5 c. 8), in the
-- province whose obligation it lowers; x = the posts moved; to_province = where they are hired.
SELECT province, cpi_code AS cpi, occurred_date AS d, employer_id, to_province,
       CAST(positions AS BIGINT) AS x
FROM ev
WHERE event_type = 'territorial_compensation'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
