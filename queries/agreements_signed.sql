-- id: agreements_signed
-- label: Convenzioni stipulate
-- kind: count
-- section: 8
-- person: no
-- unit: employer_id
-- own: agreement_type
-- Rows: one per agreement (view employer_agreements) signed in the period; d = the signature.
SELECT province, cpi_code AS cpi, signed_date AS d, employer_id, agreement_type
FROM employer_agreements
WHERE signed_date BETWEEN $from AND $to
