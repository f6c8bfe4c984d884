-- id: specialist_sessions
-- label: Colloqui di orientamento specialistico
-- kind: count
-- section: 4
-- own: group_session
-- Rows: one per specialist_orientation event dated in the period (individual and group alike).
-- group_session is the event's `group` flag as a code: yes, no, or unknown when not stated.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CASE WHEN group_session THEN 'yes' WHEN NOT group_session THEN 'no' ELSE 'unknown' END
           AS group_session
FROM ev
WHERE event_type = 'specialist_orientation'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
