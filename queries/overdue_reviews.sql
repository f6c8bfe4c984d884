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
-- Per person, up to `to`: the latest pact_signed (territory, date), the latest frequency given
-- (pact_signed or pact_updated) with its date, and the latest of either: each the row of the
-- shared view pact_events dated on or before `to` whose next one of its kind is not.
sig AS (
    SELECT person_id, province, cpi_code, occurred_date AS pact_date
    FROM pact_events
    WHERE signed AND occurred_date <= $to
      AND (next_signed_date IS NULL OR next_signed_date > $to)
),
fr AS (
    SELECT person_id, f, occurred_date AS f_date
    FROM pact_events
    WHERE f IS NOT NULL AND occurred_date <= $to
      AND (next_f_date IS NULL OR next_f_date > $to)
),
la AS (
    SELECT person_id, occurred_date AS last_date
    FROM pact_events
    WHERE occurred_date <= $to AND (next_date IS NULL OR next_date > $to)
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
    SELECT g.province, g.cpi_code, g.person_id, fr.f,
           CASE WHEN r.last_date IS NOT NULL AND r.last_date > la.last_date THEN r.last_date
                ELSE la.last_date END AS last_contact
    FROM sig g
    JOIN open_spells s ON s.person_id = g.person_id
    JOIN fr ON fr.person_id = g.person_id
    JOIN la ON la.person_id = g.person_id
    LEFT JOIN reviews r ON r.person_id = g.person_id
    WHERE g.pact_date >= s.start_date
      AND fr.f_date >= s.start_date
)
SELECT province, cpi_code AS cpi, CAST($to AS DATE) AS d, person_id
FROM c
WHERE CAST(CAST($to AS DATE) AS BIGINT) - CAST(last_contact AS BIGINT) > f
