-- id: agreement_fulfilment_rate
-- label: Quota delle assunzioni programmate realizzate alla scadenza
-- kind: rate
-- section: 8
-- person: no
-- unit: employer_id
-- own: agreement_type
-- Rows: one per planned hire (1 to planned_hires) of each agreement ended in the period (view
-- employer_agreements: its first agreement_ended); d = the end; num = 1 for the first
-- `hires_by_end` of them, the hires made under it from the signature to the end (at most the
-- planned ones). The rate is the share of planned hires made by the end of the agreement.
SELECT province, cpi, d, employer_id, agreement_type,
       CASE WHEN hire <= hires_by_end THEN 1 ELSE 0 END AS num
FROM (
    SELECT province, cpi_code AS cpi, ended_date AS d, employer_id, agreement_type, hires_by_end,
           unnest(generate_series(1, CAST(planned_hires AS BIGINT))) AS hire
    FROM employer_agreements
    WHERE ended_date BETWEEN $from AND $to
) p
