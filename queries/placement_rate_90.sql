-- id: placement_rate_90
-- label: Tasso di inserimento a 90 giorni dal patto (percorsi)
-- kind: rate
-- section: 7
-- follow_up: 90
-- Rows: one per cohort entry: the first pact_signed of a registration spell (view
-- pact_outcomes) dated in the period, with full follow-up (pact date + 90 <= obs_end, the latest
-- event date as of as_of). Territory and d = the pact. The unit is the spell ("percorsi"): a
-- person whose first pacts of two spells both fall in the period enters twice. An entry censored
-- before day 90 (a cancellation for deceased or moved before any employment hire,
-- days_to_censor < 90) is out of both sides, as time_to_placement censors it, so that on a
-- cohort without such entries the rate equals 1 - S(90) of the curve. num = 1 when the first
-- employment hire (not a traineeship nor a work grant) is dated 0..90 days after the pact (both
-- inclusive), whatever the spell.
SELECT c.province, c.cpi_code AS cpi, c.pact_date AS d, c.person_id, c.person_record_key,
       CASE WHEN c.days_to_hire <= 90 THEN 1 ELSE 0 END AS num
FROM pact_outcomes c
CROSS JOIN obs
WHERE c.pact_date BETWEEN $from AND $to
  AND CAST(c.pact_date AS BIGINT) + 90 <= CAST(obs.obs_end AS BIGINT)
  AND (c.days_to_censor IS NULL OR c.days_to_censor >= 90)
