"""tiles: per-cell cluster aggregates by facet, so FILTERED low-zoom cluster tiles stay exact and fast

Revision ID: 0353
Revises: 0352
Create Date: 2026-11-24 19:30:00

tile_cluster_cells (0351/0352) serves unfiltered cluster tiles only; a filtered z5 tile clustered
~125,000 stations per request at national scale (p95 170-300 ms). tile_filter_cells holds, for
the cluster zooms 0-8, one row per (cell, station_type, scale, facility_types, payments,
available = connectors_free > 0, max_power_kw): the same grid, counts and position sums as
tile_cluster_cells, split by the values the low-selectivity filters test. A filtered cluster tile
is then a GROUP BY cell over the rows of its 64 cells that match the filter (exact: every filter
predicate is a function of the key; min_power compares the exact max_power_kw, not a bucket).

Operator and district are deliberately not in the key: with them a z5 cell holds nearly one row
per station (170,000 rows at level 5 instead of 40,750 nationally), and their filters are
selective enough for the per-request path (index on operator/district). Zooms 9-11 also stay
per request (the tiles are small; the rows would not compress). Kept exact by statement-level
triggers with transition tables, like 0351/0352: static statements (cached plans), early exit
when an update changes nothing in the key or the sums.
"""
from __future__ import annotations

from alembic import op

revision = "0353"
down_revision = "0352"
branch_labels = None
depends_on = None

MAX_Z = 8  # tiles.render.FILTER_CELL_MAX_Z

# A delta (rows of stations with a sign) folded into every level 0..MAX_Z; keys in order so
# concurrent writers cannot deadlock. {{source}} yields (g, sign, station_type, scale,
# facility_types, payments, available, max_power_kw, total, free) for visible stations.
_FOLD = """
    WITH d AS (
        {{source}}
    ), b AS (
        SELECT floor((ST_X(d.g) + 20037508.342789244) / (40075016.685578488 / 16384))::int AS cx,
               floor((20037508.342789244 - ST_Y(d.g)) / (40075016.685578488 / 16384))::int AS cy,
               d.sign, d.station_type, coalesce(d.scale, '') AS scale, d.facility_types, d.payments,
               d.available, coalesce(d.max_power_kw, -1) AS max_power_kw,
               coalesce(d.total, 0) AS total, coalesce(d.free, 0) AS free, ST_X(d.g) AS x, ST_Y(d.g) AS y
        FROM d
    )
    INSERT INTO tile_filter_cells AS c (z, cx, cy, station_type, scale, facility_types, payments, available,
                                        max_power_kw, point_count, connectors_total, connectors_free, sum_x, sum_y)
    SELECT lv.z, b.cx >> (11 - lv.z), b.cy >> (11 - lv.z), b.station_type, b.scale, b.facility_types, b.payments,
           b.available, b.max_power_kw,
           sum(b.sign), sum(b.sign * b.total), sum(b.sign * b.free), sum(b.sign * b.x), sum(b.sign * b.y)
    FROM b CROSS JOIN generate_series(0, %(max_z)d) AS lv(z)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9
    ON CONFLICT (z, cx, cy, station_type, scale, facility_types, payments, available, max_power_kw) DO UPDATE SET
        point_count = c.point_count + EXCLUDED.point_count,
        connectors_total = c.connectors_total + EXCLUDED.connectors_total,
        connectors_free = c.connectors_free + EXCLUDED.connectors_free,
        sum_x = CASE WHEN c.point_count + EXCLUDED.point_count = 0 THEN 0 ELSE c.sum_x + EXCLUDED.sum_x END,
        sum_y = CASE WHEN c.point_count + EXCLUDED.point_count = 0 THEN 0 ELSE c.sum_y + EXCLUDED.sum_y END;
""" % {"max_z": MAX_Z}

_COLS = "geom_3857 AS g, {sign} AS sign, station_type, scale, facility_types, payments, " \
        "connectors_free > 0 AS available, max_power_kw, connectors_total AS total, connectors_free AS free"
_VISIBLE = "feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL"
# what the key and the sums depend on: an update that changes none of these leaves at once
_WATCHED = ("{a}.geom_3857, {a}.connectors_total, {a}.connectors_free, {a}.feed_state, {a}.interconnected, "
            "{a}.station_type, {a}.scale, {a}.facility_types, {a}.payments, {a}.max_power_kw")
_CHANGED = f"({_WATCHED.format(a='o')}) IS DISTINCT FROM ({_WATCHED.format(a='n')})"


def _fold(source: str) -> str:
    return _FOLD.replace("{{source}}", source)


def upgrade() -> None:
    op.execute("""
        CREATE TABLE tile_filter_cells (
            z smallint NOT NULL,
            cx integer NOT NULL,
            cy integer NOT NULL,
            station_type smallint NOT NULL,
            scale varchar(10) NOT NULL,             -- '' for none
            facility_types varchar(10)[] NOT NULL,
            payments varchar(10)[] NOT NULL,
            available boolean NOT NULL,              -- connectors_free > 0
            max_power_kw numeric(8,1) NOT NULL,      -- -1 for none
            point_count integer NOT NULL,
            connectors_total bigint NOT NULL,
            connectors_free bigint NOT NULL,
            sum_x float8 NOT NULL,
            sum_y float8 NOT NULL,
            CONSTRAINT pk_tile_filter_cells PRIMARY KEY
                (z, cx, cy, station_type, scale, facility_types, payments, available, max_power_kw)
        ) WITH (fillfactor = 75)""")
    # No second index: a tile's cells are a range of the key, (z, cx in 8x..8x+7, cy in 8y..8y+7), and
    # room left on each page lets a push update its rows in place (HOT), without index writes.

    op.execute(f"""
        CREATE OR REPLACE FUNCTION zh_tile_filter_cells_ins() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            {_fold(f"SELECT {_COLS.format(sign=1)} FROM new_rows WHERE {_VISIBLE}")}
            RETURN NULL;
        END
        $fn$""")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION zh_tile_filter_cells_del() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            {_fold(f"SELECT {_COLS.format(sign=-1)} FROM old_rows WHERE {_VISIBLE}")}
            RETURN NULL;
        END
        $fn$""")
    # One pass over the changed rows: each gives its old values (-1) and its new values (+1); a
    # status push that keeps the station available folds into one key (+0 stations, +/-free).
    vals = ", ".join(f"{{a}}.{c}" for c in ("geom_3857", "station_type", "scale", "facility_types", "payments",
                                             "max_power_kw", "connectors_total", "connectors_free"))
    vis = "{a}.feed_state = 'active' AND {a}.interconnected AND {a}.geom_3857 IS NOT NULL"
    op.execute(f"""
        CREATE OR REPLACE FUNCTION zh_tile_filter_cells_upd() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            -- most updates (names, fees, timestamps) change nothing here: leave at once
            PERFORM 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_CHANGED} LIMIT 1;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
            {_fold(f'''SELECT v.g, v.sign, v.station_type, v.scale, v.facility_types, v.payments,
                              v.free > 0 AS available, v.max_power_kw, v.total, v.free
                       FROM old_rows o JOIN new_rows n ON n.id = o.id
                       CROSS JOIN LATERAL (VALUES ({vals.format(a="o")}, -1, {vis.format(a="o")}),
                                                  ({vals.format(a="n")}, 1, {vis.format(a="n")}))
                           AS v(g, station_type, scale, facility_types, payments, max_power_kw, total, free,
                                sign, visible)
                       WHERE {_CHANGED} AND v.visible''')}
            RETURN NULL;
        END
        $fn$""")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION zh_tile_filter_cells_rebuild() RETURNS bigint LANGUAGE plpgsql AS $fn$
        DECLARE
            n bigint;
        BEGIN
            TRUNCATE tile_filter_cells;
            {_fold(f"SELECT {_COLS.format(sign=1)} FROM stations WHERE {_VISIBLE}")}
            SELECT count(*) INTO n FROM tile_filter_cells;
            RETURN n;
        END
        $fn$""")
    op.execute("""
        CREATE OR REPLACE FUNCTION zh_tile_filter_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            TRUNCATE tile_filter_cells;
            RETURN NULL;
        END
        $fn$""")
    op.execute("""
        CREATE TRIGGER trg_stations_tile_filter_cells_ins AFTER INSERT ON stations
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_filter_cells_ins()""")
    op.execute("""
        CREATE TRIGGER trg_stations_tile_filter_cells_upd AFTER UPDATE ON stations
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_filter_cells_upd()""")
    op.execute("""
        CREATE TRIGGER trg_stations_tile_filter_cells_del AFTER DELETE ON stations
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_filter_cells_del()""")
    op.execute("""
        CREATE TRIGGER trg_stations_tile_filter_cells_trunc AFTER TRUNCATE ON stations
            FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_filter_cells_truncate()""")
    op.execute("SELECT zh_tile_filter_cells_rebuild()")
    op.execute("ANALYZE tile_filter_cells")


def downgrade() -> None:
    for name in ("ins", "upd", "del", "trunc"):
        op.execute(f"DROP TRIGGER IF EXISTS trg_stations_tile_filter_cells_{name} ON stations")
    for fn in ("ins", "upd", "del", "truncate", "rebuild"):
        op.execute(f"DROP FUNCTION IF EXISTS zh_tile_filter_cells_{fn}()")
    op.execute("DROP TABLE IF EXISTS tile_filter_cells")
