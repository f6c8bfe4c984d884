-- id: service_funnel
-- label: Percorso dei servizi (funnel dall'iscrizione all'assunzione)
-- kind: funnel
-- section: 7
-- Rows: one per registration spell starting in the period (view spells); territory and d = the
-- acceptance that starts it. A stage is reached by an event of the person dated on or after the
-- spell's start date, not after its end date (the cancellation's date) and not after obs_end:
-- s_accepted = 1 (every spell); s_basic_orientation; s_pact_signed; s_measure_or_proposal
-- (measure_started or candidate_proposed); s_hired. A person with two spells starting in the
-- period is counted once per spell.
-- The stages of every spell are computed once per `as_of` in the shared view spell_stages.
SELECT province, cpi_code AS cpi, start_date AS d, person_id, person_record_key,
       1 AS s_accepted, s_basic_orientation, s_pact_signed, s_measure_or_proposal, s_hired
FROM spell_stages
WHERE start_date BETWEEN $from AND $to
