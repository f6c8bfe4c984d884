-- id: tutoring_per_measure
-- label: Incontri di tutoraggio per misura conclusa
-- kind: mean
-- section: 5
-- Rows: one per measure_ended event dated in the period (territory and date: that event);
-- x = number of tutoring_meeting events of the same measure_id and person (0 when none).
WITH ended AS (
    SELECT event_id, province, cpi_code, occurred_date, person_id, measure_id
    FROM ev
    WHERE event_type = 'measure_ended'
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
),
tut AS (
    SELECT measure_id, person_id, count(*) AS n
    FROM ev
    WHERE event_type = 'tutoring_meeting'
    GROUP BY measure_id, person_id
)
SELECT e.province, e.cpi_code AS cpi, e.occurred_date AS d, e.person_id,
       coalesce(t.n, 0) AS x
FROM ended e
LEFT JOIN tut t ON t.measure_id = e.measure_id AND t.person_id = e.person_id
