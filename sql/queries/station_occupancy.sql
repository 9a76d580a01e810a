-- Appended to status_intervals.sql: per station and hour of the China day, the connector-seconds
-- occupied (statuses 2, 3, 4) and observed (any known status), as two arrays of 24 (hour 0 first):
-- what the "usually busy" profile adds up by weekday. Meant for windows of one day.
, hours AS (
    SELECT k.station_pk, hr.h,
           sum(hr.s) FILTER (WHERE iv.status IN (2, 3, 4)) AS occupied_s, sum(hr.s) AS observed_s
    FROM iv
    JOIN k ON k.key = iv.key
    CROSS JOIN LATERAL (
        SELECT extract(hour FROM g AT TIME ZONE 'Asia/Shanghai')::int AS h,
               extract(epoch FROM least(iv.b, g + interval '1 hour') - greatest(iv.a, g)) AS s
        FROM generate_series(date_trunc('hour', iv.a, 'Asia/Shanghai'), iv.b - interval '1 microsecond',
                             interval '1 hour') AS g
    ) hr
    WHERE iv.b > iv.a AND iv.status IS NOT NULL
    GROUP BY k.station_pk, hr.h
)
SELECT st.station_pk,
       array_agg(round(coalesce(hours.occupied_s, 0))::integer ORDER BY g.h) AS occupied_s,
       array_agg(round(coalesce(hours.observed_s, 0))::integer ORDER BY g.h) AS observed_s
FROM (SELECT DISTINCT station_pk FROM hours) st
CROSS JOIN generate_series(0, 23) AS g (h)
LEFT JOIN hours ON hours.station_pk = st.station_pk AND hours.h = g.h
GROUP BY st.station_pk
