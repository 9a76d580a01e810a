-- Status pushes (migration 1510; ingest.receiver calls them on its autocommit engine): one push in one
-- statement (feed_store_status_push), or a batch of concurrent pushes in one statement and one commit
-- (feed_store_status_pushes, the receiver's group commit). Both are made of the same two parts, so a
-- batch stores exactly what the same pushes one by one would (the batch does most of its pushes as a
-- set, migration 1512, and the rest through zh_status_push_apply):
--
-- zh_status_push_connector: the replay claim (feed_push_seen), then (zh_status_push_apply) the connector's
-- status and history.
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
    SELECT * INTO o_outcome, o_station FROM zh_status_push_apply(p_operator, p_ts, p_connector, p_status, p_park,
                                                                 p_lock);
END
$fn$;

-- A claimed push's change of its connector (see zh_status_push_connector): 'stored', 'same' or 'late'.
CREATE OR REPLACE FUNCTION zh_status_push_apply(
    p_operator text, p_ts timestamptz, p_connector text, p_status smallint, p_park smallint, p_lock smallint,
    OUT o_outcome text, OUT o_station bigint
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_cs record;
    v_at timestamptz := least(p_ts, now());
    v_key integer;
    v_since timestamptz;
BEGIN
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
-- their outcomes, in that order, exactly what zh_status_push_connector would give each in turn. The
-- stations are refreshed and the version bumped once, at the end.
-- Set-based: one statement per step for the whole batch (the replay claims in order, the operators'
-- last push, the connectors' rows locked in key order, their status and history), not six per push.
-- What a step cannot decide for a whole batch goes through zh_status_push_apply one push at a time,
-- in order: a connector pushed twice in one batch, one without a status row yet, and a late report.
CREATE OR REPLACE FUNCTION feed_store_status_pushes(
    p_operator text[], p_ts timestamptz[], p_seq text[], p_sig text[],
    p_connector text[], p_status smallint[], p_park smallint[], p_lock smallint[]
) RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
    n integer := coalesce(cardinality(p_operator), 0);
    v_out text[] := array_fill(NULL::text, ARRAY[n]);
    v_claimed integer[];
    v_simple integer[];
    v_stations bigint[] := '{}';
    r record;
    a record;
BEGIN
    IF n = 0 THEN
        RETURN '{}';
    END IF;
    -- Replay claims in batch order: of pushes sharing an (operator, TimeStamp, Seq), the first is the
    -- one inserted (ON CONFLICT DO NOTHING skips the later ones of the same statement).
    WITH ins AS (
        INSERT INTO feed_push_seen (operator_id, ts, seq, sig)
        SELECT u.op, u.ts, u.seq, u.sig
        FROM unnest(p_operator, p_ts, p_seq, p_sig) WITH ORDINALITY AS u(op, ts, seq, sig, i)
        ORDER BY u.i
        ON CONFLICT DO NOTHING
        RETURNING operator_id, ts, seq
    )
    SELECT coalesce(array_agg(x.i ORDER BY x.i), '{}') INTO v_claimed
    FROM ins CROSS JOIN LATERAL (
        SELECT min(u.i)::integer AS i
        FROM unnest(p_operator, p_ts, p_seq) WITH ORDINALITY AS u(op, ts, seq, i)
        WHERE u.op = ins.operator_id AND u.ts = ins.ts AND u.seq = ins.seq
    ) x;
    -- The others: the same envelope again, or another one reusing its operator, second and Seq.
    FOR r IN
        SELECT u.i, CASE WHEN upper(f.sig) = upper(u.sig) THEN 'duplicate' ELSE 'seq_reused' END AS outcome
        FROM unnest(p_operator, p_ts, p_seq, p_sig) WITH ORDINALITY AS u(op, ts, seq, sig, i)
        JOIN feed_push_seen f ON f.operator_id = u.op AND f.ts = u.ts AND f.seq = u.seq
        WHERE u.i <> ALL(v_claimed)
    LOOP
        v_out[r.i] := r.outcome;
    END LOOP;
    IF cardinality(v_claimed) = 0 THEN
        RETURN v_out;
    END IF;

    -- last_push_at moves at most every 5 s (a hot row per operator would serialise its pushes).
    UPDATE feed_endpoints SET last_push_at = now()
    WHERE operator_id IN (SELECT p_operator[i] FROM unnest(v_claimed) i)
      AND (last_push_at IS NULL OR last_push_at < now() - interval '5 seconds');

    -- The connectors' rows, locked in key order (as the pushes one by one would lock them); then the
    -- pushes that can be stored as a set: the only claimed push of a connector that has a row, not
    -- older than the report the row holds.
    PERFORM 1 FROM connector_status cs
    WHERE (cs.operator_id, cs.connector_id) IN (SELECT p_operator[i], p_connector[i] FROM unnest(v_claimed) i)
    ORDER BY cs.operator_id, cs.connector_id
    FOR UPDATE;
    SELECT coalesce(array_agg(c.i ORDER BY c.i), '{}') INTO v_simple
    FROM (
        SELECT i, count(*) OVER (PARTITION BY p_operator[i], p_connector[i]) AS k FROM unnest(v_claimed) i
    ) c
    JOIN connector_status cs ON cs.operator_id = p_operator[c.i] AND cs.connector_id = p_connector[c.i]
    WHERE c.k = 1 AND least(p_ts[c.i], now()) >= cs.reported_at;

    -- The set: status and history as zh_status_push_apply writes them ('stored' for a new value with
    -- its history row strictly after the previous change, 'same' for a repeated one).
    FOR r IN
        WITH s AS (
            SELECT i, cs.id AS key, p_status[i] AS st, p_park[i] AS park, p_lock[i] AS lck,
                   least(p_ts[i], now()) AS v_at, cs.status IS DISTINCT FROM p_status[i] AS changed,
                   greatest(least(p_ts[i], now()), cs.status_since + interval '1 microsecond') AS v_since
            FROM unnest(v_simple) i
            JOIN connector_status cs ON cs.operator_id = p_operator[i] AND cs.connector_id = p_connector[i]
        ), upd AS (
            UPDATE connector_status c
            SET status = CASE WHEN s.changed THEN s.st ELSE c.status END, park_status = s.park, lock_status = s.lck,
                source = 'push', status_since = CASE WHEN s.changed THEN s.v_since ELSE c.status_since END,
                reported_at = s.v_at, updated_at = now()
            FROM s WHERE c.id = s.key
            RETURNING s.i, s.changed
        ), hist AS (
            INSERT INTO connector_status_history (at, connector_key, status, source)
            SELECT s.v_since, s.key, s.st, 'p' FROM s WHERE s.changed
            ON CONFLICT (connector_key, at) DO UPDATE SET status = EXCLUDED.status, source = EXCLUDED.source
        )
        SELECT upd.i, upd.changed, c.station_pk
        FROM upd LEFT JOIN connectors c ON c.operator_id = p_operator[upd.i] AND c.connector_id = p_connector[upd.i]
    LOOP
        v_out[r.i] := CASE WHEN r.changed THEN 'stored' ELSE 'same' END;
        IF r.changed AND r.station_pk IS NOT NULL THEN
            v_stations := v_stations || r.station_pk;
        END IF;
    END LOOP;

    -- The rest, one at a time in batch order.
    FOR r IN SELECT i FROM unnest(v_claimed) i WHERE i <> ALL(v_simple) ORDER BY i LOOP
        SELECT * INTO a FROM zh_status_push_apply(p_operator[r.i], p_ts[r.i], p_connector[r.i], p_status[r.i],
                                                  p_park[r.i], p_lock[r.i]);
        v_out[r.i] := a.o_outcome;
        IF a.o_outcome = 'stored' AND a.o_station IS NOT NULL THEN
            v_stations := v_stations || a.o_station;
        END IF;
    END LOOP;

    PERFORM zh_status_push_stations(ARRAY(SELECT DISTINCT s FROM unnest(v_stations) s ORDER BY s), true);
    RETURN v_out;
END
$fn$;
