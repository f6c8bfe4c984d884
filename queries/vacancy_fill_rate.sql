-- id: vacancy_fill_rate
-- label: Tasso di copertura delle richieste chiuse
-- kind: rate
-- section: 6
-- person: no
-- Rows: one per vacancy_id with a vacancy_closed dated in the period (if closed more than once
-- in the period, its latest close there: territory and date of that event). num = 1 when at
-- least one employment hire (not a traineeship nor a work grant) names that vacancy_id with a
-- date on or before the close date.
WITH closed AS (
    -- The vacancy's latest closing in the period, by ordered aggregates (cheaper than a window).
    SELECT vacancy_id,
           first_value(province ORDER BY occurred_at DESC, event_id DESC) AS province,
           first_value(cpi_code ORDER BY occurred_at DESC, event_id DESC) AS cpi_code,
           first_value(occurred_date ORDER BY occurred_at DESC, event_id DESC) AS occurred_date
    FROM ev
    WHERE event_type = 'vacancy_closed'
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
    GROUP BY vacancy_id
),
first_hire AS (
    SELECT vacancy_id, min(occurred_date) AS hire_date
    FROM ev
    WHERE event_type = 'hired' AND vacancy_id IS NOT NULL
      AND contract_class NOT IN ('traineeship', 'work_grant')
    GROUP BY vacancy_id
)
SELECT c.province, c.cpi_code AS cpi, c.occurred_date AS d, c.vacancy_id,
       CASE WHEN h.hire_date IS NOT NULL AND h.hire_date <= c.occurred_date
            THEN 1 ELSE 0 END AS num
FROM closed c
LEFT JOIN first_hire h ON h.vacancy_id = c.vacancy_id
