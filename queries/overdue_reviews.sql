-- id: overdue_reviews
-- label: Persone con verifica del patto scaduta
-- kind: stock
-- section: 3
-- Rows: one per person in an open registration spell at `to` (started on or before it, not
-- ended on or before it) with a pact_signed in that spell up to `to`, whose last contact (the
-- latest pact_signed, pact_updated or pact_review in the spell up to `to`) is more than F days
-- before `to`, F being the latest contact_frequency_days given in the spell up to `to` (on a
-- pact_signed or pact_updated). Persons with no frequency given are not counted.
-- Territory: the latest pact_signed of the spell up to `to`.
WITH open_spells AS (
    SELECT person_id, start_date
    FROM spells
    WHERE start_date <= $to AND (end_date IS NULL OR end_date > $to)
),
pe AS (
    SELECT s.person_id, e.event_type, e.occurred_date, e.occurred_at, e.event_id,
           e.province, e.cpi_code, e.contact_frequency_days
    FROM open_spells s
    JOIN ev e ON e.person_id = s.person_id
        AND e.event_type IN ('pact_signed', 'pact_updated', 'pact_review')
        AND e.occurred_date >= s.start_date
        AND e.occurred_date <= $to
        AND e.year <= CAST(date_part('year', $to) AS INT)
),
-- The latest pact_signed's territory and the latest frequency given, by ordered aggregates
-- (cheaper than a window and a filter on its row number).
terr AS (
    SELECT person_id,
           first_value(province ORDER BY occurred_at DESC, event_id DESC) AS province,
           first_value(cpi_code ORDER BY occurred_at DESC, event_id DESC) AS cpi_code
    FROM pe
    WHERE event_type = 'pact_signed'
    GROUP BY person_id
),
freq AS (
    SELECT person_id,
           first_value(contact_frequency_days ORDER BY occurred_at DESC, event_id DESC) AS f
    FROM pe
    WHERE event_type IN ('pact_signed', 'pact_updated') AND contact_frequency_days IS NOT NULL
    GROUP BY person_id
),
last_contact AS (
    SELECT person_id, max(occurred_date) AS last_date
    FROM pe
    GROUP BY person_id
)
SELECT t.province, t.cpi_code AS cpi, CAST($to AS DATE) AS d, t.person_id
FROM terr t
JOIN freq f ON f.person_id = t.person_id
JOIN last_contact l ON l.person_id = t.person_id
WHERE CAST(CAST($to AS DATE) AS BIGINT) - CAST(l.last_date AS BIGINT) > f.f
