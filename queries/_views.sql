-- Shared views, created before every KPI query on top of `ev`: the stored events as of `as_of`
-- (only rows ingested at or before it, of committed batches).
-- Statements are separated by a semicolon at the end of a line.

-- Person attributes: each application_submitted, valid from its date until the person's next
-- application (exclusive). A KPI's row takes the application with
-- app_date <= d AND (next_app_date IS NULL OR next_app_date > d): the latest one on or before d.
CREATE VIEW apps AS
WITH a AS (
    SELECT person_id, occurred_date, occurred_at, event_id, gender, birth_year, category,
           list_type, disability_pct, naspi, province, cpi_code
    FROM ev
    WHERE event_type = 'application_submitted'
),
-- The next application of the same person in (occurred_at, event_id) order (the order of
-- their dates too), by a self-join: most persons have one or two applications, so this is
-- cheaper than a window that sorts every application by person.
nexts AS (
    SELECT x.person_id, x.occurred_at, x.event_id, min(y.occurred_date) AS next_app_date
    FROM a x
    JOIN a y ON y.person_id = x.person_id
        AND (y.occurred_at > x.occurred_at
             OR (y.occurred_at = x.occurred_at AND y.event_id > x.event_id))
    GROUP BY x.person_id, x.occurred_at, x.event_id
)
SELECT
    a.person_id,
    a.occurred_date AS app_date,
    a.occurred_at AS app_at,
    a.gender,
    a.birth_year,
    a.category,
    a.list_type,
    a.disability_pct,
    a.naspi,
    a.province,
    a.cpi_code,
    n.next_app_date
FROM a
LEFT JOIN nexts n ON n.person_id = a.person_id AND n.occurred_at = a.occurred_at
    AND n.event_id = a.event_id;

-- Registration spells. A spell starts at an application_accepted and ends at the person's next
-- registration_cancelled (the first one strictly after the acceptance's instant; with plain dates
-- both are midnight, so a cancellation dated the same day as an acceptance closes the earlier
-- spell, not the new one). Acceptances inside an open spell do not start a new one.
CREATE VIEW spells AS
WITH acc AS (
    SELECT person_id, occurred_date, occurred_at, province, cpi_code
    FROM ev WHERE event_type = 'application_accepted'
),
canc AS (
    SELECT person_id, occurred_date, occurred_at, reason
    FROM ev WHERE event_type = 'registration_cancelled'
),
ends AS (
    SELECT a.person_id, a.occurred_at AS start_at, min(c.occurred_at) AS end_at
    FROM acc a
    LEFT JOIN canc c ON c.person_id = a.person_id AND c.occurred_at > a.occurred_at
    GROUP BY a.person_id, a.occurred_at
),
firsts AS (
    SELECT person_id, end_at, min(start_at) AS start_at
    FROM ends
    GROUP BY person_id, end_at
)
SELECT
    f.person_id,
    min(a.occurred_date) AS start_date,
    f.start_at,
    min(a.province) AS province,
    min(a.cpi_code) AS cpi_code,
    min(c.occurred_date) AS end_date,
    f.end_at,
    min(c.reason) AS end_reason
FROM firsts f
JOIN acc a ON a.person_id = f.person_id AND a.occurred_at = f.start_at
LEFT JOIN canc c ON c.person_id = f.person_id AND c.occurred_at = f.end_at
GROUP BY f.person_id, f.start_at, f.end_at;

-- The first pact_signed of each spell (on or after its start date, not after its end date), with
-- the pact's own territory: the pact is the cohort event of the outcome KPIs.
CREATE VIEW spell_pacts AS
WITH p AS (
    SELECT person_id, occurred_date, occurred_at, province, cpi_code
    FROM ev WHERE event_type = 'pact_signed'
),
firsts AS (
    SELECT s.person_id, s.start_at, min(p.occurred_at) AS pact_at
    FROM spells s
    JOIN p ON p.person_id = s.person_id
        AND p.occurred_date >= s.start_date
        AND (s.end_date IS NULL OR p.occurred_date <= s.end_date)
    GROUP BY s.person_id, s.start_at
)
SELECT
    s.person_id,
    s.start_date,
    s.start_at,
    s.end_date,
    s.end_reason,
    min(p.occurred_date) AS pact_date,
    f.pact_at,
    min(p.province) AS province,
    min(p.cpi_code) AS cpi_code
FROM firsts f
JOIN spells s ON s.person_id = f.person_id AND s.start_at = f.start_at
JOIN p ON p.person_id = f.person_id AND p.occurred_at = f.pact_at
GROUP BY s.person_id, s.start_date, s.start_at, s.end_date, s.end_reason, f.pact_at;

-- The first basic_orientation of each spell (on or after its start date, not after its end
-- date), with its territory. Computed once per as_of, so days_to_orientation_median only reads
-- its period off it (a tile's two periods, a page's filters) instead of joining every spell with
-- every orientation each time.
CREATE VIEW spell_orientations AS
SELECT
    s.person_id,
    s.start_at,
    s.start_date,
    first_value(o.province ORDER BY o.occurred_at, o.event_id) AS province,
    first_value(o.cpi_code ORDER BY o.occurred_at, o.event_id) AS cpi_code,
    first_value(o.occurred_date ORDER BY o.occurred_at, o.event_id) AS occurred_date
FROM spells s
JOIN ev o ON o.person_id = s.person_id
    AND o.event_type = 'basic_orientation'
    AND o.occurred_date >= s.start_date
    AND (s.end_date IS NULL OR o.occurred_date <= s.end_date)
GROUP BY s.person_id, s.start_at, s.start_date;

-- The observation end: the latest event date in the data as of as_of.
CREATE VIEW obs AS
SELECT max(occurred_date) AS obs_end FROM ev;

-- Each outcome-cohort entry (the first pact of a spell) with the whole days from the pact to the
-- person's first hire dated on or after it (null when there is none yet): the placement rates
-- read their windows off it.
CREATE VIEW pact_outcomes AS
SELECT
    sp.person_id,
    sp.start_at,
    sp.pact_date,
    sp.province,
    sp.cpi_code,
    min(h.occurred_date) - sp.pact_date AS days_to_hire
FROM spell_pacts sp
LEFT JOIN ev h ON h.person_id = sp.person_id
    AND h.event_type = 'hired'
    AND h.occurred_date >= sp.pact_date
GROUP BY sp.person_id, sp.start_at, sp.pact_date, sp.province, sp.cpi_code;

-- The longest contact frequency given on any pact (0 when none): overdue_reviews only reads the
-- reviews of the last this-many days before `to`, since an older review cannot make anyone's
-- contact recent enough. A `param_` view: bound as a literal, so files and row groups prune.
-- Capped at 4,000,000 days (some 10,950 years): event dates have four-digit years, so from any
-- `to` the window then still reaches before every event, and `to` minus it stays a valid date
-- (a frequency of a billion days would otherwise leave no valid window start at all).
CREATE VIEW param_max_contact_days AS
SELECT CAST(least(coalesce(max(contact_frequency_days), 0), 4000000) AS INT) AS days
FROM ev
WHERE event_type IN ('pact_signed', 'pact_updated');
