-- id: planned_hires
-- label: Assunzioni programmate nelle convenzioni
-- kind: sum
-- section: 8
-- person: no
-- unit: employer_id
-- own: agreement_type
-- Rows: one per agreement signed in the period, as agreements_signed; x = its planned hires.
SELECT province, cpi_code AS cpi, signed_date AS d, employer_id, agreement_type,
       CAST(planned_hires AS BIGINT) AS x
FROM employer_agreements
WHERE signed_date BETWEEN $from AND $to
