-- A status push in one statement (migration 1500; ingest.receiver calls it on its autocommit engine).
-- The replay claim (feed_push_seen), then the connector's status, its history and its station:
--
-- * The report's time is the envelope's TimeStamp (never later than our clock). connector_status only
--   moves forward in time: a report older than the one it holds (an older push after a newer pull)
--   goes to its place in connector_status_history (zh_status_history_late) and changes nothing else.
-- * A new value (or the first report, or the first report after a silence) is a history row at its
--   time, strictly after the previous change (+1 µs when two fall in one second); status_since is
--   that time. A repeated value only refreshes the report time (reported_at, updated_at).
-- * A change refreshes the station's free count, availability and silence (same rules as
--   sql/queries/refresh_station_summary.sql, for the one station) and bumps the stations layer.
--
-- Returns 'stored' (status changed), 'same' (status repeated), 'late' (an older report, put in its
-- place in the history), 'duplicate' (this exact envelope was stored before) or 'seq_reused' (same
-- operator, second and Seq but another envelope: a sender bug, nothing stored).
CREATE OR REPLACE FUNCTION feed_store_status_push(
    p_operator text, p_ts timestamptz, p_seq text, p_sig text,
    p_connector text, p_status smallint, p_park smallint, p_lock smallint
) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    v_prev_sig text;
    v_cs record;
    v_at timestamptz := least(p_ts, now());
    v_key integer;
    v_since timestamptz;
    v_station bigint;
BEGIN
    INSERT INTO feed_push_seen (operator_id, ts, seq, sig)
    VALUES (p_operator, p_ts, p_seq, p_sig)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT sig INTO v_prev_sig FROM feed_push_seen
        WHERE operator_id = p_operator AND ts = p_ts AND seq = p_seq;
        IF upper(v_prev_sig) = upper(p_sig) THEN
            RETURN 'duplicate';
        END IF;
        RETURN 'seq_reused';
    END IF;
    -- last_push_at moves at most every 5 s: a hot row per operator would serialise its pushes.
    UPDATE feed_endpoints SET last_push_at = now()
    WHERE operator_id = p_operator AND (last_push_at IS NULL OR last_push_at < now() - interval '5 seconds');

    SELECT id, status, status_since, reported_at INTO v_cs FROM connector_status
    WHERE operator_id = p_operator AND connector_id = p_connector FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO connector_status (operator_id, connector_id, status, park_status, lock_status, source,
                                      status_since, reported_at, updated_at)
        VALUES (p_operator, p_connector, p_status, p_park, p_lock, 'push', v_at, v_at, now())
        ON CONFLICT (operator_id, connector_id) DO NOTHING
        RETURNING id INTO v_key;
        IF v_key IS NULL THEN  -- a concurrent first report of this connector won: continue on its row
            SELECT id, status, status_since, reported_at INTO v_cs FROM connector_status
            WHERE operator_id = p_operator AND connector_id = p_connector FOR UPDATE;
        ELSE
            v_since := v_at;
        END IF;
    END IF;

    IF v_since IS NULL THEN
        IF v_at < v_cs.reported_at THEN
            PERFORM zh_status_history_late(v_cs.id, v_at, p_status, 'p');
            RETURN 'late';
        END IF;
        v_key := v_cs.id;
        IF v_cs.status IS NOT DISTINCT FROM p_status THEN
            UPDATE connector_status
            SET park_status = p_park, lock_status = p_lock, source = 'push', reported_at = v_at, updated_at = now()
            WHERE id = v_key;
            RETURN 'same';
        END IF;
        v_since := greatest(v_at, v_cs.status_since + interval '1 microsecond');
        UPDATE connector_status
        SET status = p_status, park_status = p_park, lock_status = p_lock, source = 'push',
            status_since = v_since, reported_at = v_at, updated_at = now()
        WHERE id = v_key;
    END IF;

    INSERT INTO connector_status_history (at, connector_key, status, source)
    VALUES (v_since, v_key, p_status, 'p')
    ON CONFLICT (connector_key, at) DO UPDATE SET status = EXCLUDED.status, source = EXCLUDED.source;

    SELECT station_pk INTO v_station FROM connectors
    WHERE operator_id = p_operator AND connector_id = p_connector;
    IF v_station IS NOT NULL THEN
        -- This connector reports: the station is not silent.
        UPDATE stations s
        SET connectors_free = agg.free,
            availability = agg.availability,
            silent_since = NULL,
            status_changed_at = now(),
            updated_at = now()
        FROM (
            SELECT count(*) FILTER (WHERE cs.status = 1) AS free,
                   CASE WHEN st.station_status <> 50 THEN 'offline'
                        WHEN count(*) FILTER (WHERE cs.status = 1) > 0 THEN 'free'
                        WHEN count(*) FILTER (WHERE cs.status IN (2, 3, 4)) > 0 THEN 'busy'
                        WHEN count(cs.status) > 0 THEN 'offline'
                        ELSE 'unknown' END AS availability
            FROM stations st
            JOIN connectors c ON c.station_pk = st.id
            LEFT JOIN connector_status cs
                   ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
            WHERE st.id = v_station
            GROUP BY st.station_status
        ) agg
        WHERE s.id = v_station;

        -- Bump the stations layer version. A concurrent push that holds the row lock is bumping
        -- it right now, so skipping keeps 1,000+ pushes/s from queueing on one row.
        PERFORM 1 FROM data_versions WHERE layer = 'stations' FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE data_versions SET version = version + 1, updated_at = now() WHERE layer = 'stations';
        ELSIF NOT EXISTS (SELECT 1 FROM data_versions WHERE layer = 'stations') THEN
            INSERT INTO data_versions (layer, version) VALUES ('stations', 2) ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN 'stored';
END
$fn$;
