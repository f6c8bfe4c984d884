-- id: adr_information_rate
-- label: Tasso di informazione sull'Assegno di Ricollocazione ai percettori NASpI orientati
-- kind: rate
-- section: 2
-- Rows: one per distinct person with a basic_orientation dated in the period whose latest
-- application_submitted on or before their first orientation in the period said naspi = true;
-- territory and d = that first orientation. num = 1 when the person has an adr_information
-- dated on or before `to` (at any earlier time too, not only in the period).
WITH o AS (
    SELECT person_id, province, cpi_code, occurred_date,
           ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY occurred_at, event_id) AS rn
    FROM ev
    WHERE event_type = 'basic_orientation'
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
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
WHERE o.rn = 1 AND a.naspi = true
