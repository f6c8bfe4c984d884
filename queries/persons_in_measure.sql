-- id: persons_in_measure
-- label: Persone in misura
-- kind: stock
-- section: 5
-- Rows: one per person with a measure_started on or before `to` that has no measure_ended of
-- the same measure_id and person dated on or after its start and on or before `to`.
-- Territory: the latest such measure_started.
-- The open measures come from the shared view measure_starts (first end on or after each start).
WITH open_m AS (
    SELECT person_id, person_record_key, province, cpi_code,
           ROW_NUMBER() OVER (
               PARTITION BY person_id
               ORDER BY occurred_at DESC, event_id DESC
           ) AS rn
    FROM measure_starts
    WHERE occurred_date <= $to
      AND (first_end_date IS NULL OR first_end_date > $to)
)
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, person_id, person_record_key
FROM open_m
WHERE rn = 1
