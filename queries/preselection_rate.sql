-- id: preselection_rate
-- label: Tasso di preselezione delle candidature
-- kind: rate
-- section: 6
-- Rows: one per distinct (vacancy_id, person) pair with a candidate_proposed dated in the
-- period; territory and date from the pair's first such event in the period. num = 1 when a
-- candidate_preselected of the same pair is dated on or before `to`.
-- A pair's first event in the period is the one in the period whose previous event of the pair
-- (shared view pair_steps) is dated before the period or missing.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id,
       CASE WHEN next_step_date <= $to THEN 1 ELSE 0 END AS num
FROM pair_steps
WHERE event_type = 'candidate_proposed'
  AND occurred_date BETWEEN $from AND $to
  AND (prev_date IS NULL OR prev_date < $from)
