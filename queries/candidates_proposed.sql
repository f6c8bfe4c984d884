-- id: candidates_proposed
-- label: Candidature proposte ai datori di lavoro
-- kind: count
-- section: 6
-- own: channel
-- Rows: one per candidate_proposed event dated in the period, with its channel.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, channel
FROM ev
WHERE event_type = 'candidate_proposed'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
