"""search: the sync triggers skip rows whose copy would not change

Revision ID: 0303
Revises: 0302
Create Date: 2026-11-24 19:05:00

A status push changes ``connectors_free`` on every update, but the narrow table only keeps
``free`` (any connector free); an upsert that rewrote the same values still cost a new row
version. Measured on 5,000 stations: the triggers added about 23 µs to each such UPDATE (of
80 µs), and the ON CONFLICT ... WHERE below leaves unchanged rows alone.
"""
from __future__ import annotations

from alembic import op

revision = "0303"
down_revision = "0302"
branch_labels = None
depends_on = None

SEARCH_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    op_pk integer;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM station_search WHERE id = OLD.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN
        DELETE FROM station_search WHERE id = OLD.id;
    END IF;
    IF NEW.feed_state = 'active' AND NEW.interconnected AND NEW.geom IS NOT NULL THEN
        SELECT o.id INTO op_pk FROM operators o WHERE o.operator_id = NEW.operator_id;
        INSERT INTO station_search (id, op, district, st, scale, ft, pay, free, power10, geom)
        VALUES (NEW.id, op_pk, NEW.district_adcode, NEW.station_type,
                CASE NEW.scale WHEN 'small' THEN 1 WHEN 'medium' THEN 2 WHEN 'large' THEN 3 WHEN 'xlarge' THEN 4
                               ELSE 0 END,
                (CASE WHEN 'dc' = ANY(NEW.facility_types) THEN 1 ELSE 0 END)
                | (CASE WHEN 'ac' = ANY(NEW.facility_types) THEN 2 ELSE 0 END)
                | (CASE WHEN 'acdc' = ANY(NEW.facility_types) THEN 4 ELSE 0 END)
                | (CASE WHEN 'wireless' = ANY(NEW.facility_types) THEN 8 ELSE 0 END)
                | (CASE WHEN 'other' = ANY(NEW.facility_types) THEN 16 ELSE 0 END),
                (CASE WHEN 'card' = ANY(NEW.payments) THEN 1 ELSE 0 END)
                | (CASE WHEN 'online' = ANY(NEW.payments) THEN 2 ELSE 0 END)
                | (CASE WHEN 'cash' = ANY(NEW.payments) THEN 4 ELSE 0 END)
                | (CASE WHEN 'other' = ANY(NEW.payments) THEN 8 ELSE 0 END),
                NEW.connectors_free > 0, (NEW.max_power_kw * 10)::integer, NEW.geom)
        ON CONFLICT (id) DO UPDATE SET op = EXCLUDED.op, district = EXCLUDED.district, st = EXCLUDED.st,
            scale = EXCLUDED.scale, ft = EXCLUDED.ft, pay = EXCLUDED.pay, free = EXCLUDED.free,
            power10 = EXCLUDED.power10, geom = EXCLUDED.geom
        WHERE (station_search.op, station_search.district, station_search.st, station_search.scale,
               station_search.ft, station_search.pay, station_search.free, station_search.power10)
              IS DISTINCT FROM (EXCLUDED.op, EXCLUDED.district, EXCLUDED.st, EXCLUDED.scale, EXCLUDED.ft,
                                EXCLUDED.pay, EXCLUDED.free, EXCLUDED.power10)
           OR NOT ST_Equals(station_search.geom, EXCLUDED.geom);
    ELSIF TG_OP = 'UPDATE' THEN
        DELETE FROM station_search WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
"""

TEXT_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_text_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM station_text WHERE id = OLD.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN
        DELETE FROM station_text WHERE id = OLD.id;
    END IF;
    IF NEW.feed_state = 'active' AND NEW.interconnected AND NEW.geom IS NOT NULL THEN
        INSERT INTO station_text (id, t, n, p)
        VALUES (NEW.id, coalesce(NEW.search_text, NEW.name), NEW.name,
                concat_ws(' ', NEW.name_pinyin, NEW.name_initials))
        ON CONFLICT (id) DO UPDATE SET t = EXCLUDED.t, n = EXCLUDED.n, p = EXCLUDED.p
        WHERE (station_text.t, station_text.n, station_text.p) IS DISTINCT FROM (EXCLUDED.t, EXCLUDED.n, EXCLUDED.p);
    ELSIF TG_OP = 'UPDATE' THEN
        DELETE FROM station_text WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(SEARCH_FUNCTION)
    op.execute(TEXT_FUNCTION)


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    for name in ("2026_11_24_0301_search_codes.py", "2026_11_24_0302_search_text.py"):
        spec = importlib.util.spec_from_file_location(name[:-3], Path(__file__).with_name(name))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        op.execute(mod.SYNC_FUNCTION)
