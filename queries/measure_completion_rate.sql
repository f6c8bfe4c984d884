-- id: measure_completion_rate
-- label: Tasso di conclusione positiva delle misure
-- kind: rate
-- section: 5
-- own: measure_type
-- Rows: one per measure_ended event dated in the period (territory and date: that event);
-- num = 1 when end_reason is completed or hired. measure_type comes from the measure_started
-- of the same measure_id and person: the latest one on or before the end, else the earliest
-- after it; null when the start is not in the data.
WITH ended AS (
    SELECT event_id, province, cpi_code, occurred_date, occurred_at, person_id, measure_id,
           end_reason
    FROM ev
    WHERE event_type = 'measure_ended'
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
),
typed AS (
    SELECT e.event_id, s.measure_type,
           ROW_NUMBER() OVER (
               PARTITION BY e.event_id
               ORDER BY CASE WHEN s.occurred_at <= e.occurred_at THEN 0 ELSE 1 END,
                        CASE WHEN s.occurred_at <= e.occurred_at
                             THEN -CAST(s.occurred_date AS BIGINT)
                             ELSE CAST(s.occurred_date AS BIGINT) END,
                        s.event_id
           ) AS rn
    FROM ended e
    JOIN ev s ON s.event_type = 'measure_started'
        AND s.measure_id = e.measure_id AND s.person_id = e.person_id
)
SELECT e.province, e.cpi_code AS cpi, e.occurred_date AS d, e.person_id,
       CASE WHEN e.end_reason IN ('completed', 'hired') THEN 1 ELSE 0 END AS num,
       t.measure_type
FROM ended e
LEFT JOIN typed t ON t.event_id = e.event_id AND t.rn = 1
