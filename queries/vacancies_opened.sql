-- id: vacancies_opened
-- label: Richieste di personale ricevute
-- kind: count
-- section: 6
-- own: request_type
-- person: no
-- Rows: one per vacancy_opened event dated in the period, with its request_type.
SELECT province, cpi_code AS cpi, occurred_date AS d, vacancy_id, vacancy_record_key, request_type
FROM ev
WHERE event_type = 'vacancy_opened'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
