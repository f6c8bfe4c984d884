-- id: preselection_rate
-- label: Tasso di preselezione delle candidature entro 60 giorni
-- kind: rate
-- section: 6
-- follow_up: 60
-- Rows: one per distinct (vacancy_id, person) pair whose first candidate_proposed (view
-- pair_steps) is dated in the period with at least 60 days of observation after it (proposal +
-- 60 <= obs_end); territory and d = that first proposal. num = 1 when a candidate_preselected of
-- the same pair is dated 0 to 60 days after it, both ends included (KPIS.md v2).
SELECT s.province, s.cpi_code AS cpi, s.first_date AS d, s.person_id, s.person_record_key,
       CASE WHEN s.followed THEN 1 ELSE 0 END AS num
FROM pair_steps s
CROSS JOIN obs
WHERE s.step = 'candidate_proposed'
  AND s.first_date BETWEEN $from AND $to
  AND CAST(s.first_date AS BIGINT) + 60 <= CAST(obs.obs_end AS BIGINT)
