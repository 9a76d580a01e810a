-- Platform operation statistics for the portal's home page (P1): stations reported by the
-- operators' platforms and still active, with their piles, connectors and rated power,
-- by district and by station type. One row per (district, station type); totals are summed in Python.
SELECT s.district_adcode                      AS adcode,
       s.station_type                         AS station_type,
       count(*)                               AS stations,
       coalesce(sum(e.piles), 0)::bigint      AS piles,
       coalesce(sum(c.connectors), 0)::bigint AS connectors,
       coalesce(sum(e.power_kw), 0)           AS power_kw,
       array_agg(DISTINCT s.operator_id)      AS operators
FROM stations s
LEFT JOIN LATERAL (SELECT count(*) AS piles, sum(power_kw) AS power_kw FROM equipment WHERE station_pk = s.id) e ON true
LEFT JOIN LATERAL (SELECT count(*) AS connectors FROM connectors WHERE station_pk = s.id) c ON true
WHERE s.feed_state = 'active'
GROUP BY s.district_adcode, s.station_type
