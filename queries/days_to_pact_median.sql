-- id: days_to_pact_median
-- label: Giorni mediani dall'iscrizione alla sottoscrizione del patto
-- kind: median
-- section: 3
-- Rows: one per registration spell whose first pact_signed (the earliest one dated on or after
-- the spell's start_date and not after its end_date: view spell_pacts) is dated in the period;
-- territory and d = that pact; x = whole days from the spell's start_date to it.
SELECT province, cpi_code AS cpi, pact_date AS d, person_id, person_record_key,
       CAST(pact_date AS BIGINT) - CAST(start_date AS BIGINT) AS x
FROM spell_pacts
WHERE pact_date BETWEEN $from AND $to
