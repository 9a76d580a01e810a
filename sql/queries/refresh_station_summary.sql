-- Recompute the derived columns of the given stations from their piles, connectors and live status.
-- :ids bigint[]; :b1..:b4 scale band lower bounds (piles). One statement, used by the sync and the
-- push receiver alike, so the map, the tiles and the search never aggregate per request. A silent
-- connector (status NULL, migration 1500) is unknown: never free, never busy; a station whose
-- connectors all went silent is silent since the last of them did (silent_since).
WITH eq AS (
    SELECT e.station_pk,
           count(*) AS piles,
           max(e.power_kw) AS max_power,
           array_agg(DISTINCT CASE e.equipment_type WHEN 1 THEN 'dc' WHEN 2 THEN 'ac' WHEN 3 THEN 'acdc'
                                                    WHEN 4 THEN 'wireless' ELSE 'other' END) AS facility_types
    FROM equipment e
    WHERE e.station_pk = ANY(:ids)
    GROUP BY e.station_pk
), cn AS (
    SELECT c.station_pk,
           count(*) AS total,
           count(*) FILTER (WHERE cs.status = 1) AS free,
           count(*) FILTER (WHERE cs.status IN (2, 3, 4)) AS busy,
           count(cs.status) AS known,
           max(cs.status_since) FILTER (WHERE cs.id IS NOT NULL AND cs.status IS NULL) AS silent_since,
           max(c.power_kw) AS max_power
    FROM connectors c
    LEFT JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
    WHERE c.station_pk = ANY(:ids)
    GROUP BY c.station_pk
), agg AS (
    SELECT s.id,
           coalesce(eq.piles, 0) AS piles,
           coalesce(eq.facility_types, '{}') AS facility_types,
           greatest(eq.max_power, cn.max_power) AS max_power,
           coalesce(cn.total, 0) AS total,
           coalesce(cn.free, 0) AS free,
           CASE WHEN s.station_status <> 50 THEN 'offline'
                WHEN coalesce(cn.free, 0) > 0 THEN 'free'
                WHEN coalesce(cn.busy, 0) > 0 THEN 'busy'
                WHEN coalesce(cn.known, 0) > 0 THEN 'offline'
                ELSE 'unknown' END AS availability,
           CASE WHEN coalesce(cn.known, 0) = 0 THEN cn.silent_since END AS silent_since
    FROM stations s
    LEFT JOIN eq ON eq.station_pk = s.id
    LEFT JOIN cn ON cn.station_pk = s.id
    WHERE s.id = ANY(:ids)
)
UPDATE stations s
SET pile_count = agg.piles,
    facility_types = agg.facility_types,
    max_power_kw = agg.max_power,
    connectors_total = agg.total,
    connectors_free = agg.free,
    availability = agg.availability,
    silent_since = agg.silent_since,
    scale = CASE WHEN agg.piles >= :b4 THEN 'xlarge' WHEN agg.piles >= :b3 THEN 'large'
                 WHEN agg.piles >= :b2 THEN 'medium' WHEN agg.piles >= :b1 THEN 'small' END,
    updated_at = CASE WHEN (s.pile_count, s.facility_types, s.max_power_kw, s.connectors_total,
                            s.connectors_free, s.availability, s.silent_since)
                           IS DISTINCT FROM
                           (agg.piles, agg.facility_types::varchar(10)[], agg.max_power, agg.total, agg.free, agg.availability,
                            agg.silent_since)
                      THEN now() ELSE s.updated_at END
FROM agg
WHERE s.id = agg.id
  AND (s.pile_count, s.facility_types, s.max_power_kw, s.connectors_total, s.connectors_free, s.availability,
       s.silent_since, s.scale)
      IS DISTINCT FROM
      (agg.piles, agg.facility_types::varchar(10)[], agg.max_power, agg.total, agg.free, agg.availability,
       agg.silent_since, CASE WHEN agg.piles >= :b4 THEN 'xlarge' WHEN agg.piles >= :b3 THEN 'large'
            WHEN agg.piles >= :b2 THEN 'medium' WHEN agg.piles >= :b1 THEN 'small' END)
RETURNING s.id
