-- Status history and reliability (migration 1500; services.reliability).

-- A report older than the connector's current one (an older push after a newer pull, or a pull
-- overtaken by a push): it lands in its place in connector_status_history; connector_status keeps
-- its newer status. When no later change follows it in the history, the current status (reported
-- after it) resumes at its report time, which becomes its status_since; carried month-start rows
-- after it (a month's partition starts with every connector's state, source 'c') take its status.
-- What the aggregates hold from then on is marked stale (services.reliability.rollup redoes it).
-- Returns false when the history already said so (a repeat) or the time lies before the oldest
-- month kept. The caller holds the connector_status row lock.
CREATE OR REPLACE FUNCTION zh_status_history_late(
    p_key integer, p_at timestamptz, p_status smallint, p_source "char"
) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    v_prev record;
    v_cur record;
    v_next timestamptz;
BEGIN
    SELECT h.at, h.status INTO v_prev FROM connector_status_history h
    WHERE h.connector_key = p_key AND h.at <= p_at ORDER BY h.at DESC LIMIT 1;
    IF FOUND AND (v_prev.status IS NOT DISTINCT FROM p_status OR v_prev.at = p_at) THEN
        RETURN false;
    END IF;
    BEGIN
        INSERT INTO connector_status_history (at, connector_key, status, source)
        VALUES (p_at, p_key, p_status, p_source)
        ON CONFLICT DO NOTHING;
    EXCEPTION WHEN check_violation THEN  -- no partition: older than the history kept
        RETURN false;
    END;
    SELECT min(n.at) INTO v_next FROM connector_status_history n
    WHERE n.connector_key = p_key AND n.at > p_at AND n.source <> 'c';
    UPDATE connector_status_history h SET status = p_status
    WHERE h.connector_key = p_key AND h.source = 'c' AND h.at > p_at AND h.at < coalesce(v_next, 'infinity');
    IF v_next IS NULL THEN
        SELECT status, source, reported_at INTO v_cur FROM connector_status WHERE id = p_key;
        INSERT INTO connector_status_history (at, connector_key, status, source)
        VALUES (v_cur.reported_at, p_key, v_cur.status,
                CASE v_cur.source WHEN 'push' THEN 'p' WHEN 'pull' THEN 'l' ELSE 's' END)
        ON CONFLICT (connector_key, at) DO UPDATE SET status = EXCLUDED.status, source = EXCLUDED.source;
        UPDATE connector_status SET status_since = v_cur.reported_at
        WHERE id = p_key AND status_since < v_cur.reported_at;
    END IF;
    UPDATE reliability_days SET stale = true
    WHERE day >= (p_at AT TIME ZONE 'Asia/Shanghai')::date AND NOT stale AND aggregated_until > p_at;
    RETURN true;
END
$fn$;

-- Every StationStatus a station takes (maintenance, 6, is excluded from uptime), with the time it
-- was stored: new stations by statement, changes by row (only statements that set station_status
-- consider the trigger; a status push never does).
CREATE OR REPLACE FUNCTION zh_station_status_history() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        INSERT INTO station_status_history (station_pk, at, station_status)
        SELECT n.id, now(), n.station_status FROM new_rows n
        ON CONFLICT (station_pk, at) DO UPDATE SET station_status = EXCLUDED.station_status;
    ELSE
        INSERT INTO station_status_history (station_pk, at, station_status)
        VALUES (NEW.id, now(), NEW.station_status)
        ON CONFLICT (station_pk, at) DO UPDATE SET station_status = EXCLUDED.station_status;
    END IF;
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS trg_stations_status_history_ins ON stations;
DROP TRIGGER IF EXISTS trg_stations_status_history_upd ON stations;
CREATE TRIGGER trg_stations_status_history_ins AFTER INSERT ON stations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_station_status_history();
CREATE TRIGGER trg_stations_status_history_upd AFTER UPDATE OF station_status ON stations
    FOR EACH ROW WHEN (OLD.station_status IS DISTINCT FROM NEW.station_status)
    EXECUTE FUNCTION zh_station_status_history();
