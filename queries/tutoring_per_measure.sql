-- id: tutoring_per_measure
-- label: Incontri di tutoraggio per misura conclusa
-- kind: mean
-- section: 5
-- Rows: one per measure_ended event dated in the period (territory and date: that event);
-- x = number of tutoring_meeting events of the same measure_id and person (0 when none).
-- The meetings are counted once per `as_of` in the shared view measure_ends.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, tutoring_meetings AS x
FROM measure_ends
WHERE occurred_date BETWEEN $from AND $to
