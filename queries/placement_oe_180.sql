-- id: placement_oe_180
-- label: Inserimenti a 180 giorni osservati su attesi per profilo (O/A)
-- kind: oe
-- section: 7
-- follow_up: 180
-- The rows of placement_rate_180 (one per cohort entry with full follow-up: the first
-- pact_signed of a registration spell dated in the period, pact date + 180 <= obs_end, not
-- censored before day 180; num = 1 when the first employment hire is 0..180 days after the
-- pact). The engine (`query::casemix`) fits a logistic regression of num on the person's
-- attributes at the pact (age band, gender, category, list type, disability band, NASpI, year)
-- over the whole nation's rows of the period, and gives per territory (region, province, cpi)
-- the placements observed (O), expected from its entries' fitted chances (E), O/E and its
-- exact Poisson 95% and 99.8% intervals.
SELECT c.province, c.cpi_code AS cpi, c.pact_date AS d, c.person_id, c.person_record_key,
       CASE WHEN c.days_to_hire <= 180 THEN 1 ELSE 0 END AS num
FROM pact_outcomes c
CROSS JOIN obs
WHERE c.pact_date BETWEEN $from AND $to
  AND CAST(c.pact_date AS BIGINT) + 180 <= CAST(obs.obs_end AS BIGINT)
  AND (c.days_to_censor IS NULL OR c.days_to_censor >= 180)
