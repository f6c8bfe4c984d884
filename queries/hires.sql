-- id: hires
-- label: Assunzioni (inserimenti lavorativi)
-- kind: count
-- section: 7
-- own: contract_class, hiring_mode, part_time
-- Rows: one per employment hire dated in the period: a `hired` event whose contract_class is not
-- traineeship nor work_grant (KPIS.md v2: those are measures, counted by work_experiences_started);
-- territory and d = the hire. part_time is the hire's flag as a code: yes, no, or unknown when
-- the hire does not state it.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       contract_class,
       hiring_mode,
       CASE WHEN part_time THEN 'yes' WHEN NOT part_time THEN 'no' ELSE 'unknown' END AS part_time
FROM ev
WHERE event_type = 'hired'
  AND contract_class NOT IN ('traineeship', 'work_grant')
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
