-- id: referrals
-- label: Invii ad altri servizi
-- kind: count
-- section: 4
-- own: to_service
-- Rows: one per referral event dated in the period, with its to_service.
SELECT province, cpi_code AS cpi, occurred_date AS d, person_id, person_record_key, to_service
FROM ev
WHERE event_type = 'referral'
  AND occurred_date BETWEEN $from AND $to
  AND year BETWEEN CAST(date_part('year', $from) AS INT) AND CAST(date_part('year', $to) AS INT)
