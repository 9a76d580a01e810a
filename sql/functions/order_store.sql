-- One pushed charge order stored in one statement (migration 1401; ingest.orders calls it).
-- The caller has read and checked the order (services.orders.checks) and passes its figures and
-- verdict; this function does what must be atomic: the envelope's replay claim (feed_push_seen), the
-- per-order lock, the duplicate check by content digest, the version number, the `latest` flag and
-- the insert. A revision (same StartChargeSeq, other figures) gets a finding saying what it replaced.
-- Returns (outcome, confirm_result, version): outcome 'stored', 'duplicate' (this content was
-- stored before: its answer again) or 'seq_reused' (another envelope used this second and Seq).
CREATE OR REPLACE FUNCTION zh_store_order(
    p_operator text, p_ts timestamptz, p_seq text, p_sig text,
    p_order_seq text, p_digest text, p_connector text, p_station bigint,
    p_start timestamptz, p_end timestamptz, p_day date,
    p_power numeric, p_elec numeric, p_service numeric, p_money numeric,
    p_stop smallint, p_sum_period smallint, p_details jsonb,
    p_confirm smallint, p_findings jsonb, p_at_tariff boolean, p_overcharge numeric,
    p_tariff_versions bigint[], p_raw jsonb
) RETURNS TABLE (outcome text, confirm_result smallint, version smallint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_prev_sig text;
    v_found record;
    v_latest record;
    v_version smallint := 1;
    v_findings jsonb := p_findings;
BEGIN
    INSERT INTO feed_push_seen (operator_id, ts, seq, sig) VALUES (p_operator, p_ts, p_seq, p_sig)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT s.sig INTO v_prev_sig FROM feed_push_seen s
        WHERE s.operator_id = p_operator AND s.ts = p_ts AND s.seq = p_seq;
        IF upper(v_prev_sig) <> upper(p_sig) THEN
            RETURN QUERY SELECT 'seq_reused'::text, NULL::smallint, NULL::smallint;
            RETURN;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('zhcharge.order'), hashtext(p_operator || ':' || p_order_seq));
    SELECT o.version, o.confirm_result INTO v_found FROM charge_orders o
    WHERE o.operator_id = p_operator AND o.start_charge_seq = p_order_seq AND o.digest = p_digest;
    IF FOUND THEN
        RETURN QUERY SELECT 'duplicate'::text, v_found.confirm_result, v_found.version;
        RETURN;
    END IF;
    SELECT o.version, o.total_power, o.total_money INTO v_latest FROM charge_orders o
    WHERE o.operator_id = p_operator AND o.start_charge_seq = p_order_seq
    ORDER BY o.version DESC LIMIT 1;
    IF FOUND THEN
        v_version := v_latest.version + 1;
        UPDATE charge_orders o SET latest = false
        WHERE o.operator_id = p_operator AND o.start_charge_seq = p_order_seq AND o.latest;
        v_findings := v_findings || jsonb_build_array(jsonb_build_object(
            'check', 'revision', 'code', 'revised', 'severity', 'warning',
            'message', format('version %s replaces version %s (TotalPower %s → %s, TotalMoney %s → %s)',
                              v_version, v_latest.version, v_latest.total_power, p_power,
                              v_latest.total_money, p_money)));
    END IF;
    INSERT INTO charge_orders (operator_id, start_charge_seq, version, latest, digest, connector_id, station_pk,
        start_time, end_time, day, total_power, total_elec_money, total_service_money, total_money, stop_reason,
        sum_period, details, confirm_result, findings, at_tariff, overcharge_yuan, tariff_versions, raw)
    VALUES (p_operator, p_order_seq, v_version, true, p_digest, p_connector, p_station, p_start, p_end, p_day,
        p_power, p_elec, p_service, p_money, p_stop, p_sum_period, p_details, p_confirm, v_findings, p_at_tariff,
        p_overcharge, p_tariff_versions, p_raw);
    RETURN QUERY SELECT 'stored'::text, p_confirm, v_version;
END
$fn$;

-- A batch of pushed orders in one statement and one commit (migration 1403; the receiver's group
-- commit, ingest.group_commit): zh_store_order for each, in the order given (the receiver sorts a batch
-- by operator and StartChargeSeq, so concurrent batches take the per-order locks in one order). Each
-- element carries zh_store_order's arguments by name (details, findings and raw as JSON text); the rows
-- returned are their results, in that order.
CREATE OR REPLACE FUNCTION zh_store_orders(p_orders jsonb)
RETURNS TABLE (outcome text, confirm_result smallint, version smallint)
LANGUAGE plpgsql AS $fn$
DECLARE
    o record;
BEGIN
    FOR o IN
        SELECT x.* FROM ROWS FROM (jsonb_to_recordset(p_orders) AS (
            op text, ts timestamptz, envelope_seq text, sig text, seq text, digest text, connector text,
            station bigint, start timestamptz, "end" timestamptz, day date, power numeric, elec numeric,
            service numeric, money numeric, stop smallint, sum_period smallint, details text, confirm smallint,
            findings text, at_tariff boolean, overcharge numeric, tariff_versions bigint[], raw text))
        WITH ORDINALITY AS x(op, ts, envelope_seq, sig, seq, digest, connector, station, start, "end", day, power,
                             elec, service, money, stop, sum_period, details, confirm, findings, at_tariff,
                             overcharge, tariff_versions, raw, n)
        ORDER BY x.n
    LOOP
        RETURN QUERY SELECT * FROM zh_store_order(
            o.op, o.ts, o.envelope_seq, o.sig, o.seq, o.digest, o.connector, o.station, o.start, o."end", o.day,
            o.power, o.elec, o.service, o.money, o.stop, o.sum_period, o.details::jsonb, o.confirm,
            o.findings::jsonb, o.at_tariff, o.overcharge, o.tariff_versions, o.raw::jsonb);
    END LOOP;
END
$fn$;
