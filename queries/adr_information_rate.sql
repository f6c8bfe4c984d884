-- id: adr_information_rate
-- label: Tasso di informazione sull'Assegno di Ricollocazione ai percettori NASpI orientati
-- kind: rate
-- section: 2
-- Rows: one per distinct person with a basic_orientation dated in the period whose latest
-- application_submitted on or before their first orientation in the period said naspi = true;
-- territory and d = that first orientation. num = 1 when the person has an adr_information
-- dated on or before `to` (at any earlier time too, not only in the period).
WITH o AS (
    -- The person's first orientation in the period, by ordered aggregates (cheaper than a
    -- window and a filter on its row number).
    SELECT person_id,
           first_value(province ORDER BY occurred_at, event_id) AS province,
           first_value(cpi_code ORDER BY occurred_at, event_id) AS cpi_code,
           first_value(occurred_date ORDER BY occurred_at, event_id) AS occurred_date
    FROM ev
    WHERE event_type = 'basic_orientation'
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
    GROUP BY person_id
),
adr AS (
    SELECT DISTINCT person_id
    FROM ev
    WHERE event_type = 'adr_information' AND occurred_date <= $to
)
SELECT o.province, o.cpi_code AS cpi, o.occurred_date AS d, o.person_id,
       CASE WHEN adr.person_id IS NULL THEN 0 ELSE 1 END AS num
FROM o
JOIN apps a ON a.person_id = o.person_id
    AND a.app_date <= o.occurred_date
    AND (a.next_app_date IS NULL OR a.next_app_date > o.occurred_date)
LEFT JOIN adr ON adr.person_id = o.person_id
WHERE a.naspi = true
