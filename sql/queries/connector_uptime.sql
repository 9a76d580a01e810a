-- Appended to status_intervals.sql: per connector and window, the seconds up (statuses 1, 2, 3, 4),
-- down (0 offline, 255 fault), unknown (silent) and excluded (the station announced maintenance,
-- StationStatus 6, or is closed by its opening hours: whatever the status), counted from its first
-- report on (before it nothing is counted, so windows add up); the faults (entries into 255 from
-- anything else, outside excluded time) and the last one's time. `day` is the China date of the
-- window's start (windows of one day give days).
, ex AS (
    SELECT st.station_pk, w.a, range_agg(x.r) AS excl
    FROM (SELECT DISTINCT station_pk FROM k) st CROSS JOIN w
    CROSS JOIN LATERAL (
        SELECT tstzrange(m.at, m.next) * tstzrange(w.a, w.b) AS r
        FROM (SELECT h.at, h.station_status, lead(h.at, 1, 'infinity') OVER (ORDER BY h.at) AS next
              FROM station_status_history h WHERE h.station_pk = st.station_pk AND h.at < w.b) m
        WHERE m.station_status = 6 AND m.next > w.a
        UNION ALL
        SELECT tstzrange(d.d + make_interval(mins => lower(c.c)), d.d + make_interval(mins => upper(c.c)))
               * tstzrange(w.a, w.b)
        FROM station_open_hours oh
        CROSS JOIN LATERAL unnest(int4multirange(int4range(0, 1440)) - oh.open_minutes) AS c (c)
        CROSS JOIN LATERAL generate_series(date_trunc('day', w.a, 'Asia/Shanghai'), w.b, interval '24 hours') AS d (d)
        WHERE oh.station_pk = st.station_pk AND oh.open_minutes IS NOT NULL
    ) x
    WHERE NOT isempty(x.r)
    GROUP BY st.station_pk, w.a
), pieces AS (
    SELECT iv.key, iv.wa, k.station_pk, iv.status, date_part('epoch', iv.b - iv.a) AS len,
           CASE WHEN ex.excl IS NULL THEN 0
                ELSE (SELECT coalesce(sum(date_part('epoch', upper(r) - lower(r))), 0)
                      FROM unnest(ex.excl * tstzmultirange(tstzrange(iv.a, iv.b))) r) END AS x,
           NOT iv.is_start AND iv.status = 255 AND iv.prev IS DISTINCT FROM 255
           AND NOT coalesce(ex.excl @> iv.a, false) AS fault,
           iv.a
    FROM iv
    JOIN k ON k.key = iv.key
    LEFT JOIN ex ON ex.station_pk = k.station_pk AND ex.a = iv.wa
)
SELECT key AS connector_key, station_pk, (wa AT TIME ZONE 'Asia/Shanghai')::date AS day,
       coalesce(sum(len - x) FILTER (WHERE status IN (1, 2, 3, 4)), 0) AS up_s,
       coalesce(sum(len - x) FILTER (WHERE status IN (0, 255)), 0) AS down_s,
       sum(x) AS excluded_s,
       coalesce(sum(len - x) FILTER (WHERE status IS NULL), 0) AS unknown_s,
       count(*) FILTER (WHERE fault) AS faults,
       max(a) FILTER (WHERE fault) AS last_fault_at
FROM pieces
GROUP BY key, wa, station_pk
