-- Status intervals of connectors over one or more windows, derived from connector_status_history
-- (a change lasts until the next one). The WITH part shared by services.reliability: callers append
-- their own final SELECT (connector_uptime.sql, station_occupancy.sql, the status-history listing).
-- :keys integer[] (connector_status.id; NULL = every connector that belongs to a station)
-- :starts, :ends timestamptz[] (the windows [start, end)); :now timestamptz (nothing after it).
-- k (key, station_pk); w (a, b, m: the window, cut at :now, and the start of its China month);
-- iv (key, wa, wb, a, b, status, prev, is_start): the state at each window's start (is_start, at
-- the window's start) and every change inside it, each lasting until the next or the window's end.
WITH k AS MATERIALIZED (
    SELECT cs.id AS key, c.station_pk
    FROM connector_status cs
    JOIN connectors c ON c.operator_id = cs.operator_id AND c.connector_id = cs.connector_id
    WHERE CAST(:keys AS integer[]) IS NULL OR cs.id = ANY(CAST(:keys AS integer[]))
), w AS MATERIALIZED (
    SELECT w0.a, least(w0.b, CAST(:now AS timestamptz)) AS b, date_trunc('month', w0.a, 'Asia/Shanghai') AS m
    FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])) AS w0 (a, b)
    WHERE w0.a < least(w0.b, CAST(:now AS timestamptz))
), r AS (
    -- the state at the window's start: the last row at or before it (a month begins with carried rows)
    SELECT k.key, w.a AS wa, w.b AS wb, w.a AS at, s.status, true AS is_start
    FROM k CROSS JOIN w
    CROSS JOIN LATERAL (SELECT h.status FROM connector_status_history h
                        WHERE h.connector_key = k.key AND h.at >= w.m AND h.at <= w.a
                        ORDER BY h.at DESC LIMIT 1) s
    UNION ALL
    SELECT h.connector_key, w.a, w.b, h.at, h.status, false
    FROM w JOIN connector_status_history h ON h.at > w.a AND h.at < w.b
    JOIN k ON k.key = h.connector_key
), iv AS (
    SELECT r.key, r.wa, r.wb, r.at AS a, coalesce(lead(r.at) OVER o, r.wb) AS b, r.status,
           lag(r.status) OVER o AS prev, r.is_start
    FROM r WINDOW o AS (PARTITION BY r.key, r.wa ORDER BY r.at)
)
