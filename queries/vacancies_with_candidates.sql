-- id: vacancies_with_candidates
-- label: Richieste con almeno un candidato entro 60 giorni
-- kind: rate
-- section: 6
-- follow_up: 60
-- person: no
-- Rows: one per vacancy_id whose vacancy_opened is dated in the period with at least 60 days of
-- observation after it (opening + 60 <= obs_end); territory and d = its first opening in the
-- period. num = 1 when a candidate_proposed names that vacancy_id 0 to 60 days after the opening,
-- both ends included (the seed's "incontro realizzato con almeno un candidato").
WITH opened AS (
    SELECT vacancy_id,
           first_value(province ORDER BY occurred_at, event_id) AS province,
           first_value(cpi_code ORDER BY occurred_at, event_id) AS cpi_code,
           min(occurred_date) AS opened_date
    FROM ev
    WHERE event_type = 'vacancy_opened'
      AND occurred_date BETWEEN $from AND $to
      AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
    GROUP BY vacancy_id
),
cohort AS (
    SELECT o.vacancy_id, o.province, o.cpi_code, o.opened_date
    FROM opened o
    CROSS JOIN obs
    WHERE CAST(o.opened_date AS BIGINT) + 60 <= CAST(obs.obs_end AS BIGINT)
),
proposed AS (
    SELECT DISTINCT c.vacancy_id
    FROM cohort c
    JOIN ev p ON p.vacancy_id = c.vacancy_id
        AND p.event_type = 'candidate_proposed'
        AND p.occurred_date >= c.opened_date
        AND CAST(p.occurred_date AS BIGINT) <= CAST(c.opened_date AS BIGINT) + 60
)
SELECT c.province, c.cpi_code AS cpi, c.opened_date AS d, c.vacancy_id,
       CASE WHEN p.vacancy_id IS NULL THEN 0 ELSE 1 END AS num
FROM cohort c
LEFT JOIN proposed p ON p.vacancy_id = c.vacancy_id
