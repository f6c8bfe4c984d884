-- id: days_to_orientation_median
-- label: Giorni mediani dall'iscrizione al primo colloquio di orientamento
-- kind: median
-- section: 2
-- Rows: one per registration spell whose first basic_orientation (the earliest one dated on or
-- after the spell's start_date and not after its end_date) is dated in the period; territory and
-- d = that orientation; x = whole days from the spell's start_date to it.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key,
       CAST(occurred_date AS BIGINT) - CAST(start_date AS BIGINT) AS x
FROM spell_orientations
WHERE occurred_date BETWEEN $from AND $to
