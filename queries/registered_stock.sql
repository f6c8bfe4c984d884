-- id: registered_stock
-- label: Iscritti al collocamento mirato
-- kind: stock
-- section: 1
-- Rows: one per person in an open registration spell at `to` (started on or before it, not
-- ended on or before it). Territory: the accepting event.
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, person_id, person_record_key
FROM spells
WHERE start_date <= $to AND (end_date IS NULL OR end_date > $to)
