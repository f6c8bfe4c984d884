-- id: placement_rate_365
-- label: Tasso di inserimento a 365 giorni dal patto
-- kind: rate
-- section: 7
-- Rows: one per cohort entry: the first pact_signed of a registration spell (view pact_outcomes)
-- dated in the period, with full follow-up (pact date + 365 <= obs_end, the latest event date as
-- of as_of). Territory and d = the pact. A person with two spells whose first pacts both fall in
-- the period enters the cohort twice (one row per spell): each spell is one placement episode.
-- num = 1 when the person has a `hired` dated 0..365 days after the pact date (both inclusive),
-- whatever the spell (a hire reported after the cancellation for 'hired' still counts).
SELECT c.province, c.cpi_code AS cpi, c.pact_date AS d, c.person_id, c.person_record_key,
       CASE WHEN c.days_to_hire <= 365 THEN 1 ELSE 0 END AS num
FROM pact_outcomes c
CROSS JOIN obs
WHERE c.pact_date BETWEEN $from AND $to
  AND CAST(c.pact_date AS BIGINT) + 365 <= CAST(obs.obs_end AS BIGINT)
