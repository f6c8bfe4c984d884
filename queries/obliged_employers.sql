-- id: obliged_employers
-- label: Datori di lavoro obbligati
-- kind: count_distinct
-- section: 8
-- person: no
-- unit: employer_id
-- own: sector, size_band
-- Rows: one per employer's latest obligation_statement for a province (view
-- employer_statements) of the year `to` falls in: obligations are a stock, those in force at the
-- end of the period; d = `to`. A cell counts an employer once, however many of its provinces
-- fall in the cell.
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, employer_id, sector, size_band
FROM employer_statements
WHERE reference_year = CAST(date_part('year', $to) AS INT)
