-- id: pending_applications
-- label: Istanze in attesa di decisione
-- kind: stock
-- section: 1
-- own: overdue
-- Rows: one per person whose latest application_submitted on or before `to` has no decision
-- (accepted or rejected) dated on or after it, up to `to`. Territory: that application.
-- overdue = 'yes' when the application is more than 30 days old at `to`.
-- Undecided at `to`: no decision between the application and `to`, so the first decision on or
-- after it (shared view app_decisions) is later than `to` or missing.
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, person_id, person_record_key,
       CASE WHEN CAST(CAST($to AS DATE) AS BIGINT) - CAST(app_date AS BIGINT) > 30
            THEN 'yes' ELSE 'no' END AS overdue
FROM app_decisions
WHERE app_date <= $to AND (next_app_date IS NULL OR next_app_date > $to)
  AND (first_decision_date IS NULL OR first_decision_date > $to)
