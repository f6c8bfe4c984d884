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
-- Everything per person in one pass over pe (a CTE used three times would be computed three
-- times): the latest pact_signed's territory and the latest frequency given, by filtered ordered
-- aggregates (cheaper than windows), and the last contact.
agg AS (
    SELECT person_id,
           first_value(province ORDER BY occurred_at DESC, event_id DESC)
               FILTER (WHERE event_type = 'pact_signed') AS province,
           first_value(cpi_code ORDER BY occurred_at DESC, event_id DESC)
               FILTER (WHERE event_type = 'pact_signed') AS cpi_code,
           first_value(contact_frequency_days ORDER BY occurred_at DESC, event_id DESC)
               FILTER (WHERE event_type IN ('pact_signed', 'pact_updated')
                       AND contact_frequency_days IS NOT NULL) AS f,
           max(occurred_date) AS last_date,
           max(CASE WHEN event_type = 'pact_signed' THEN 1 ELSE 0 END) AS has_pact
    FROM pe
    GROUP BY person_id
)
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, person_id
FROM agg
WHERE has_pact = 1
  AND f IS NOT NULL
  AND CAST(CAST($to AS DATE) AS BIGINT) - CAST(last_date AS BIGINT) > f
