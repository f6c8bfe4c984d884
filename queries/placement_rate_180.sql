-- id: placement_rate_180
-- label: Tasso di inserimento a 180 giorni dal patto
-- kind: rate
-- section: 7
-- Rows: one per cohort entry: the first pact_signed of a registration spell (view spell_pacts)
-- dated in the period, with full follow-up (pact date + 180 <= obs_end, the latest event date as
-- of as_of). Territory and d = the pact. A person with two spells whose first pacts both fall in
-- the period enters the cohort twice (one row per spell): each spell is one placement episode.
-- num = 1 when the person has a `hired` dated 0..180 days after the pact date (both inclusive),
-- whatever the spell (a hire reported after the cancellation for 'hired' still counts).
WITH c AS (
    SELECT sp.person_id, sp.start_at, sp.pact_date, sp.province, sp.cpi_code
    FROM spell_pacts sp
    CROSS JOIN obs
    WHERE sp.pact_date BETWEEN $from AND $to
      AND CAST(sp.pact_date AS BIGINT) + 180 <= CAST(obs.obs_end AS BIGINT)
),
h AS (
    SELECT person_id, occurred_date
    FROM ev
    WHERE event_type = 'hired'
)
SELECT c.province, c.cpi_code AS cpi, c.pact_date AS d, c.person_id,
       max(CASE WHEN h.person_id IS NULL THEN 0 ELSE 1 END) AS num
FROM c
LEFT JOIN h ON h.person_id = c.person_id
    AND h.occurred_date >= c.pact_date
    AND CAST(h.occurred_date AS BIGINT) <= CAST(c.pact_date AS BIGINT) + 180
GROUP BY c.person_id, c.start_at, c.pact_date, c.province, c.cpi_code
