-- Status pushes (migration 1510; ingest.receiver calls them on its autocommit engine): one push in one
-- statement (feed_store_status_push), or a batch of concurrent pushes in one statement and one commit
-- (feed_store_status_pushes, the receiver's group commit). Both are made of the same two parts, so a
-- batch stores exactly what the same pushes one by one would:
--
-- zh_status_push_connector: the replay claim (feed_push_seen), then the connector's status and history.
-- * The report's time is the envelope's TimeStamp (never later than our clock). connector_status only
--   moves forward in time: a report older than the one it holds (an older push after a newer pull)
--   goes to its place in connector_status_history (zh_status_history_late) and changes nothing else.
-- * A new value (or the first report, or the first report after a silence) is a history row at its
--   time, strictly after the previous change (+1 µs when two fall in one second); status_since is
--   that time. A repeated value only refreshes the report time (reported_at, updated_at).
-- Its outcome: 'stored' (status changed), 'same' (status repeated), 'late' (an older report, put in
-- its place in the history), 'duplicate' (this exact envelope was stored before) or 'seq_reused' (same
-- operator, second and Seq but another envelope: a sender bug, nothing stored); and the station of a
-- 'stored' change.
--
-- zh_status_push_stations: for the stations of the changes, their free count, availability and
-- silence (same rules as sql/queries/refresh_station_summary.sql) in one UPDATE (the statement-level
-- triggers on stations, search and tile cells, run once for a whole batch), and the stations layer's
-- version bump.
CREATE OR REPLACE FUNCTION zh_status_push_connector(
    p_operator text, p_ts timestamptz, p_seq text, p_sig text,
    p_connector text, p_status smallint, p_park smallint, p_lock smallint,
    OUT o_outcome text, OUT o_station bigint
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_prev_sig text;
    v_cs record;
    v_at timestamptz := least(p_ts, now());
    v_key integer;
    v_since timestamptz;
BEGIN
    INSERT INTO feed_push_seen (operator_id, ts, seq, sig)
    VALUES (p_operator, p_ts, p_seq, p_sig)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT sig INTO v_prev_sig FROM feed_push_seen
        WHERE operator_id = p_operator AND ts = p_ts AND seq = p_seq;
        IF upper(v_prev_sig) = upper(p_sig) THEN
            o_outcome := 'duplicate';
            RETURN;
        END IF;
        o_outcome := 'seq_reused';
        RETURN;
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
            o_outcome := 'late';
            RETURN;
        END IF;
        v_key := v_cs.id;
        IF v_cs.status IS NOT DISTINCT FROM p_status THEN
            UPDATE connector_status
            SET park_status = p_park, lock_status = p_lock, source = 'push', reported_at = v_at, updated_at = now()
            WHERE id = v_key;
            o_outcome := 'same';
            RETURN;
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

    SELECT station_pk INTO o_station FROM connectors
    WHERE operator_id = p_operator AND connector_id = p_connector;
    o_outcome := 'stored';
END
$fn$;

-- p_wait: a batch waits for the data_versions row lock, so its bump always follows every change it
-- carries; a single push skips it while another holds it (that one is bumping it right now), which
-- keeps 1,000+ single pushes/s from queueing on one row.
CREATE OR REPLACE FUNCTION zh_status_push_stations(p_stations bigint[], p_wait boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF coalesce(cardinality(p_stations), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_stations) > 1 THEN
        -- concurrent batches lock the stations they share in one order (no deadlock)
        PERFORM 1 FROM stations WHERE id = ANY(p_stations) ORDER BY id FOR NO KEY UPDATE;
    END IF;
    -- These connectors report: their stations are not silent.
    UPDATE stations s
    SET connectors_free = agg.free,
        availability = agg.availability,
        silent_since = NULL,
        status_changed_at = now(),
        updated_at = now()
    FROM (
        SELECT st.id,
               count(*) FILTER (WHERE cs.status = 1) AS free,
               CASE WHEN st.station_status <> 50 THEN 'offline'
                    WHEN count(*) FILTER (WHERE cs.status = 1) > 0 THEN 'free'
                    WHEN count(*) FILTER (WHERE cs.status IN (2, 3, 4)) > 0 THEN 'busy'
                    WHEN count(cs.status) > 0 THEN 'offline'
                    ELSE 'unknown' END AS availability
        FROM stations st
        JOIN connectors c ON c.station_pk = st.id
        LEFT JOIN connector_status cs
               ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
        WHERE st.id = ANY(p_stations)
        GROUP BY st.id, st.station_status
    ) agg
    WHERE s.id = agg.id;

    -- Bump the stations layer version.
    IF p_wait THEN
        PERFORM 1 FROM data_versions WHERE layer = 'stations' FOR UPDATE;
    ELSE
        PERFORM 1 FROM data_versions WHERE layer = 'stations' FOR UPDATE SKIP LOCKED;
    END IF;
    IF FOUND THEN
        UPDATE data_versions SET version = version + 1, updated_at = now() WHERE layer = 'stations';
    ELSIF NOT EXISTS (SELECT 1 FROM data_versions WHERE layer = 'stations') THEN
        INSERT INTO data_versions (layer, version) VALUES ('stations', 2) ON CONFLICT DO NOTHING;
    END IF;
END
$fn$;

-- One push: returns its outcome (see zh_status_push_connector).
CREATE OR REPLACE FUNCTION feed_store_status_push(
    p_operator text, p_ts timestamptz, p_seq text, p_sig text,
    p_connector text, p_status smallint, p_park smallint, p_lock smallint
) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM zh_status_push_connector(p_operator, p_ts, p_seq, p_sig, p_connector, p_status, p_park,
                                                  p_lock);
    IF r.o_outcome = 'stored' AND r.o_station IS NOT NULL THEN
        PERFORM zh_status_push_stations(ARRAY[r.o_station], false);
    END IF;
    RETURN r.o_outcome;
END
$fn$;

-- A batch of pushes, stored in the order given (the receiver sorts a batch by operator and connector,
-- keeping each connector's pushes in their order, so concurrent batches lock rows in one order):
-- their outcomes, in that order. The stations are refreshed and the version bumped once, at the end.
CREATE OR REPLACE FUNCTION feed_store_status_pushes(
    p_operator text[], p_ts timestamptz[], p_seq text[], p_sig text[],
    p_connector text[], p_status smallint[], p_park smallint[], p_lock smallint[]
) RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    v_out text[] := '{}';
    v_stations bigint[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_operator), 0) LOOP
        SELECT * INTO r FROM zh_status_push_connector(p_operator[i], p_ts[i], p_seq[i], p_sig[i], p_connector[i],
                                                      p_status[i], p_park[i], p_lock[i]);
        v_out := v_out || r.o_outcome;
        IF r.o_outcome = 'stored' AND r.o_station IS NOT NULL THEN
            v_stations := v_stations || r.o_station;
        END IF;
    END LOOP;
    PERFORM zh_status_push_stations(ARRAY(SELECT DISTINCT s FROM unnest(v_stations) s ORDER BY s), true);
    RETURN v_out;
END
$fn$;
