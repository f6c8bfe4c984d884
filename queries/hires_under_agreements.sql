-- id: hires_under_agreements
-- label: Assunzioni in convenzione
-- kind: count
-- section: 8
-- own: agreement_type, contract_class
-- Rows: one per employment hire (as in hires: not a traineeship nor a work grant) dated in the
-- period that names an agreement_id; territory and d = the hire; agreement_type from the
-- agreement (view employer_agreements), null when no signature of it was received.
SELECT h.province, h.cpi_code AS cpi, h.occurred_date AS d, h.person_id, h.person_record_key,
       a.agreement_type, h.contract_class
FROM ev h
LEFT JOIN employer_agreements a ON a.agreement_id = h.agreement_id
WHERE h.event_type = 'hired'
  AND h.agreement_id IS NOT NULL
  AND h.contract_class NOT IN ('traineeship', 'work_grant')
  AND h.occurred_date BETWEEN $from AND $to
  AND h.year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
