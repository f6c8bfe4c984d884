-- id: persons_in_measure
-- label: Persone in misura
-- kind: stock
-- section: 5
-- Rows: one per person with a measure_started on or before `to` that has no measure_ended of
-- the same measure_id and person dated on or after its start and on or before `to`.
-- Territory: the latest such measure_started.
WITH open_m AS (
    SELECT s.person_id, s.province, s.cpi_code,
           ROW_NUMBER() OVER (
               PARTITION BY s.person_id
               ORDER BY s.occurred_at DESC, s.event_id DESC
           ) AS rn
    FROM ev s
    WHERE s.event_type = 'measure_started'
      AND s.occurred_date <= $to
      AND NOT EXISTS (
          SELECT 1 FROM ev e
          WHERE e.event_type = 'measure_ended'
            AND e.measure_id = s.measure_id
            AND e.person_id = s.person_id
            AND e.occurred_date >= s.occurred_date
            AND e.occurred_date <= $to
      )
)
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, person_id
FROM open_m
WHERE rn = 1
