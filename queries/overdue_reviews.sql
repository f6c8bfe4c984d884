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
--
-- Computed without joining the spells with their contacts: for a spell open at `to`, the
-- person's latest event of a kind up to `to` lies in that spell exactly when it is dated on or
-- after the spell's start (nothing of the person happens after `to` here, and the spell runs
-- from its start past `to`). So each "latest ... in the spell" is the person's latest up to
-- `to`, kept when it is on or after the start. Reviews only count as contacts: their latest
-- date is a plain maximum.
WITH open_spells AS (
    SELECT person_id, start_date
    FROM spells
    WHERE start_date <= $to AND (end_date IS NULL OR end_date > $to)
),
pacts AS (
    -- Per person, up to `to`: the latest pact_signed (territory, date), the latest frequency
    -- given (pact_signed or pact_updated) with its date, and the latest of either, by filtered
    -- ordered aggregates.
    SELECT person_id,
           first_value(province ORDER BY occurred_at DESC, event_id DESC)
               FILTER (WHERE event_type = 'pact_signed') AS province,
           first_value(cpi_code ORDER BY occurred_at DESC, event_id DESC)
               FILTER (WHERE event_type = 'pact_signed') AS cpi_code,
           max(occurred_date) FILTER (WHERE event_type = 'pact_signed') AS pact_date,
           first_value(contact_frequency_days ORDER BY occurred_at DESC, event_id DESC)
               FILTER (WHERE contact_frequency_days IS NOT NULL) AS f,
           max(occurred_date) FILTER (WHERE contact_frequency_days IS NOT NULL) AS f_date,
           max(occurred_date) AS last_date
    FROM ev
    WHERE event_type IN ('pact_signed', 'pact_updated')
      AND occurred_date <= $to
      AND year <= CAST(date_part('year', $to) AS INT)
    GROUP BY person_id
),
reviews AS (
    -- Only the reviews of the last `param_max_contact_days` days up to `to`: an older review
    -- is more than F days before `to` for every F given, so it cannot make a contact recent
    -- enough, and dropping it leaves every person's overdue status as it was.
    SELECT person_id, max(occurred_date) AS last_date
    FROM ev
    WHERE event_type = 'pact_review'
      AND occurred_date <= $to
      AND occurred_date >= CAST(CAST(CAST($to AS DATE) AS INT) - $param_max_contact_days AS DATE)
      AND year <= CAST(date_part('year', $to) AS INT)
      AND year * 100 + month >= CAST(
          date_part('year', CAST(CAST(CAST($to AS DATE) AS INT) - $param_max_contact_days AS DATE)) * 100
          + date_part('month', CAST(CAST(CAST($to AS DATE) AS INT) - $param_max_contact_days AS DATE))
          AS INT)
    GROUP BY person_id
),
c AS (
    SELECT p.province, p.cpi_code, p.person_id, p.f,
           CASE WHEN r.last_date IS NOT NULL AND r.last_date > p.last_date THEN r.last_date
                ELSE p.last_date END AS last_contact
    FROM pacts p
    JOIN open_spells s ON s.person_id = p.person_id
    LEFT JOIN reviews r ON r.person_id = p.person_id
    WHERE p.pact_date >= s.start_date
      AND p.f_date >= s.start_date
)
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, person_id
FROM c
WHERE CAST(CAST($to AS DATE) AS BIGINT) - CAST(last_contact AS BIGINT) > f
