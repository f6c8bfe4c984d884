-- id: preselection_rate
-- label: Tasso di preselezione delle candidature
-- kind: rate
-- section: 6
-- Rows: one per distinct (vacancy_id, person) pair with a candidate_proposed dated in the
-- period; territory and date from the pair's first such event in the period. num = 1 when a
-- candidate_preselected of the same pair is dated on or before `to`.
WITH prop AS (
    -- The pair's first event in the period, by an ordered aggregate (cheaper than a window).
    SELECT vacancy_id, person_id,
           first_value(province ORDER BY occurred_at, event_id) AS province,
           first_value(cpi_code ORDER BY occurred_at, event_id) AS cpi_code,
           first_value(occurred_date ORDER BY occurred_at, event_id) AS occurred_date
    FROM ev
    WHERE event_type = 'candidate_proposed'
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
    GROUP BY vacancy_id, person_id
),
hit AS (
    -- The pairs that reached the next step by `to` (shared view pair_steps).
    SELECT vacancy_id, person_id
    FROM pair_steps
    WHERE preselected_date <= $to
)
SELECT p.province, p.cpi_code AS cpi, p.occurred_date AS d, p.person_id,
       CASE WHEN h.person_id IS NULL THEN 0 ELSE 1 END AS num
FROM prop p
LEFT JOIN hit h ON h.vacancy_id = p.vacancy_id AND h.person_id = p.person_id
