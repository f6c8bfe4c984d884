-- id: measure_completion_rate
-- label: Tasso di conclusione positiva delle misure
-- kind: rate
-- section: 5
-- own: measure_type
-- Rows: one per measure_ended event dated in the period (territory and date: that event);
-- num = 1 when end_reason is completed or hired. measure_type comes from the measure_started
-- of the same measure_id and person: the latest one on or before the end, else the earliest
-- after it; null when the start is not in the data.
-- The type comes from the shared view measure_ends.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN end_reason IN ('completed', 'hired') THEN 1 ELSE 0 END AS num,
       measure_type
FROM measure_ends
WHERE occurred_date BETWEEN $from AND $to
