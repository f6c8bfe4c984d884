-- id: pacts_with_referral
-- label: Patti seguiti da un invio a misure o servizi entro 90 giorni
-- kind: rate
-- section: 3
-- follow_up: 90
-- Rows: one per first pact of a registration spell (view spell_pacts) dated in the period with at
-- least 90 days of observation after it (pact date + 90 <= obs_end); territory and d = the pact.
-- num = 1 when the same person has a measure_started or referral event dated 0 to 90 days after
-- the pact, both ends included ("invio a misure", the pact's outcome in the seed).
WITH cohort AS (
    SELECT sp.person_id, sp.person_record_key, sp.start_at, sp.pact_date, sp.province,
           sp.cpi_code
    FROM spell_pacts sp
    CROSS JOIN obs
    WHERE sp.pact_date BETWEEN $from AND $to
      AND CAST(sp.pact_date AS BIGINT) + 90 <= CAST(obs.obs_end AS BIGINT)
),
sent AS (
    SELECT DISTINCT c.person_id, c.start_at
    FROM cohort c
    JOIN ev e ON e.person_id = c.person_id
        AND e.event_type IN ('measure_started', 'referral')
        AND e.occurred_date >= c.pact_date
        AND CAST(e.occurred_date AS BIGINT) <= CAST(c.pact_date AS BIGINT) + 90
)
SELECT c.province, c.cpi_code AS cpi, c.pact_date AS d, c.person_id, c.person_record_key,
       CASE WHEN s.person_id IS NULL THEN 0 ELSE 1 END AS num
FROM cohort c
LEFT JOIN sent s ON s.person_id = c.person_id AND s.start_at = c.start_at
