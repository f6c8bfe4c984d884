-- id: days_to_orientation_median
-- label: Giorni mediani dall'iscrizione al primo colloquio di orientamento
-- kind: median
-- section: 2
-- Rows: one per registration spell whose first basic_orientation (the earliest one dated on or
-- after the spell's start_date and not after its end_date) is dated in the period; territory and
-- d = that orientation; x = whole days from the spell's start_date to it.
WITH firsts AS (
    SELECT s.person_id, s.start_date,
           o.province, o.cpi_code, o.occurred_date,
           ROW_NUMBER() OVER (
               PARTITION BY s.person_id, s.start_at ORDER BY o.occurred_at, o.event_id
           ) AS rn
    FROM spells s
    JOIN ev o ON o.person_id = s.person_id
        AND o.event_type = 'basic_orientation'
        AND o.occurred_date >= s.start_date
        AND (s.end_date IS NULL OR o.occurred_date <= s.end_date)
)
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id,
       CAST(occurred_date AS BIGINT) - CAST(start_date AS BIGINT) AS x
FROM firsts
WHERE rn = 1 AND occurred_date BETWEEN $from AND $to
