-- id: pending_applications
-- label: Istanze in attesa di decisione
-- kind: stock
-- section: 1
-- own: overdue
-- Rows: one per person whose latest application_submitted on or before `to` has no decision
-- (accepted or rejected) dated on or after it, up to `to`. Territory: that application.
-- overdue = 'yes' when the application is more than 30 days old at `to`.
WITH latest AS (
    SELECT person_id, app_date, province, cpi_code
    FROM apps
    WHERE app_date <= $to AND (next_app_date IS NULL OR next_app_date > $to)
),
dec AS (
    SELECT person_id, occurred_date
    FROM ev
    WHERE event_type IN ('application_accepted', 'application_rejected')
      AND occurred_date <= $to
)
SELECT l.province, l.cpi_code AS cpi, CAST($to AS DATE) AS d, l.person_id,
       CASE WHEN CAST(CAST($to AS DATE) AS BIGINT) - CAST(l.app_date AS BIGINT) > 30
            THEN 'yes' ELSE 'no' END AS overdue
FROM latest l
LEFT JOIN dec ON dec.person_id = l.person_id AND dec.occurred_date >= l.app_date
WHERE dec.person_id IS NULL
