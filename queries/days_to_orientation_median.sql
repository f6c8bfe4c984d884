-- id: days_to_orientation_median
-- label: Giorni mediani dall'iscrizione al primo colloquio di orientamento
-- kind: median
-- section: 2
-- Rows: one per registration spell whose first basic_orientation (the earliest one dated on or
-- after the spell's start_date and not after its end_date) is dated in the period; territory and
-- d = that orientation; x = whole days from the spell's start_date to it.
WITH firsts AS (
    -- The spell's first orientation, by ordered aggregates (cheaper than a window).
    SELECT s.person_id, s.start_date,
           first_value(o.province ORDER BY o.occurred_at, o.event_id) AS province,
           first_value(o.cpi_code ORDER BY o.occurred_at, o.event_id) AS cpi_code,
           first_value(o.occurred_date ORDER BY o.occurred_at, o.event_id) AS occurred_date
    FROM spells s
    JOIN ev o ON o.person_id = s.person_id
        AND o.event_type = 'basic_orientation'
        AND o.occurred_date >= s.start_date
        AND (s.end_date IS NULL OR o.occurred_date <= s.end_date)
    GROUP BY s.person_id, s.start_at, s.start_date
)
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id,
       CAST(occurred_date AS BIGINT) - CAST(start_date AS BIGINT) AS x
FROM firsts
WHERE occurred_date BETWEEN $from AND $to
