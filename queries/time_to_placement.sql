-- id: time_to_placement
-- label: Tempo all'inserimento lavorativo dal patto (percorsi, curva di sopravvivenza)
-- kind: survival
-- section: 7
-- Rows: one per cohort entry as in placement_rate_N: the first pact_signed of a registration
-- spell (view pact_outcomes) dated in the period, with no follow-up condition; territory and
-- d = the pact; the unit is the spell ("percorsi"). duration = days from the pact to the entry's
-- end of observation; event = 1 when that end is the first employment hire (not a traineeship
-- nor a work grant) on or after the pact, in any spell. Censored (event = 0) at a
-- registration_cancelled for deceased or moved dated before that hire (days_to_censor),
-- otherwise at obs_end (the latest event date as of as_of) when there is no hire yet. A
-- cancellation for any other reason does not censor: the person stays at risk, as in
-- placement_rate_N (KPIS.md v2).
SELECT c.province, c.cpi_code AS cpi, c.pact_date AS d, c.person_id, c.person_record_key,
       CASE WHEN c.days_to_censor IS NOT NULL THEN c.days_to_censor
            WHEN c.days_to_hire IS NOT NULL THEN c.days_to_hire
            ELSE CAST(obs.obs_end AS BIGINT) - CAST(c.pact_date AS BIGINT)
       END AS duration,
       CASE WHEN c.days_to_censor IS NULL AND c.days_to_hire IS NOT NULL THEN 1 ELSE 0 END AS event
FROM pact_outcomes c
CROSS JOIN obs
WHERE c.pact_date BETWEEN $from AND $to
