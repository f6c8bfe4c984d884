-- id: numerical_requests_filled_60d
-- label: Richieste numeriche evase entro 60 giorni
-- kind: rate
-- section: 8
-- person: no
-- unit: employer_id
-- follow_up: 60
-- Rows: one per numerical_request dated in the period with at least 60 days of observation after
-- it (request + 60 <= obs_end); num = 1 when the distinct persons hired naming its vacancy_id
-- (employment hires, as in hires) dated from the request to 60 days after number at least its
-- positions. A request resent under another event_id counts again.
WITH r AS (
    SELECT r.event_id, r.province, r.cpi_code, r.occurred_date, r.employer_id, r.vacancy_id,
           r.positions
    FROM ev r
    CROSS JOIN obs
    WHERE r.event_type = 'numerical_request'
      AND r.occurred_date BETWEEN $from AND $to
      AND r.year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
      AND CAST(r.occurred_date AS BIGINT) + 60 <= CAST(obs.obs_end AS BIGINT)
)
SELECT r.province, r.cpi_code AS cpi, r.occurred_date AS d, r.employer_id,
       CASE WHEN count(DISTINCT h.person_id) >= max(r.positions) THEN 1 ELSE 0 END AS num
FROM r
LEFT JOIN ev h ON h.event_type = 'hired' AND h.vacancy_id = r.vacancy_id
    AND h.contract_class NOT IN ('traineeship', 'work_grant')
    AND h.occurred_date >= r.occurred_date
    AND CAST(h.occurred_date AS BIGINT) <= CAST(r.occurred_date AS BIGINT) + 60
GROUP BY r.event_id, r.province, r.cpi_code, r.occurred_date, r.employer_id
