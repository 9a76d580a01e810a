"""search: API keys, the rate-limit windows and the narrow search table kept by a trigger

Revision ID: 0300
Revises: 0001
Create Date: 2026-11-24 18:30:00

``station_search`` holds the facet columns of visible stations only (active and interconnected),
about 160 bytes a row instead of the kilobyte-plus of ``stations``; a facet query over the whole
country scans it in parallel in a fraction of the time a scan of ``stations`` takes. A row
trigger on ``stations`` keeps it exact inside the writer's transaction (no refresh lag, no
extra job); the trigger only does work when one of the copied columns changes.

``api_rate`` is UNLOGGED: counters of one-minute windows shared by every app process; losing
them in a crash only resets the current minute.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0300"
down_revision = "0001"
branch_labels = ("search",)
depends_on = None

_COLUMNS = ("operator_id", "district_adcode", "station_type", "scale", "facility_types", "payments",
            "connectors_free", "max_power_kw", "geom")

SYNC_FUNCTION = f"""
CREATE OR REPLACE FUNCTION zh_station_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM station_search WHERE id = OLD.id;
        RETURN NULL;
    END IF;
    IF NEW.feed_state = 'active' AND NEW.interconnected AND NEW.geom IS NOT NULL THEN
        INSERT INTO station_search (id, {", ".join(_COLUMNS)})
        VALUES (NEW.id, {", ".join("NEW." + c for c in _COLUMNS)})
        ON CONFLICT (id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS)};
    ELSIF TG_OP = 'UPDATE' THEN
        DELETE FROM station_search WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
"""

TRUNCATE_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE station_search;
    RETURN NULL;
END $$;
"""

_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in
                       (*_COLUMNS, "id", "feed_state", "interconnected"))


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("rate_per_min", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.CheckConstraint("rate_per_min IS NULL OR rate_per_min > 0", name=op.f("ck_api_keys_rate_per_min")),
    )
    op.create_index("ix_api_keys_owner_user_id", "api_keys", ["owner_user_id"])

    op.execute("""
        CREATE UNLOGGED TABLE api_rate (
            bucket text NOT NULL,
            window_start timestamptz NOT NULL,
            hits integer NOT NULL DEFAULT 1,
            CONSTRAINT pk_api_rate PRIMARY KEY (bucket, window_start)
        )""")

    op.execute("""
        CREATE TABLE station_search (
            id bigint NOT NULL,
            operator_id varchar(9) NOT NULL,
            district_adcode integer,
            station_type smallint NOT NULL,
            scale varchar(10),
            facility_types varchar(10)[] NOT NULL,
            payments varchar(10)[] NOT NULL,
            connectors_free integer NOT NULL,
            max_power_kw numeric(8, 1),
            geom geometry(Point, 4326) NOT NULL,
            CONSTRAINT pk_station_search PRIMARY KEY (id)
        )""")
    op.execute("CREATE INDEX ix_station_search_geom ON station_search USING gist (geom)")
    op.execute(SYNC_FUNCTION)
    op.execute(TRUNCATE_FUNCTION)
    op.execute("CREATE TRIGGER trg_station_search_ins_del AFTER INSERT OR DELETE ON stations "
               "FOR EACH ROW EXECUTE FUNCTION zh_station_search_sync()")
    op.execute(f"CREATE TRIGGER trg_station_search_upd AFTER UPDATE ON stations "
               f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION zh_station_search_sync()")
    op.execute("CREATE TRIGGER trg_station_search_truncate AFTER TRUNCATE ON stations "
               "FOR EACH STATEMENT EXECUTE FUNCTION zh_station_search_truncate()")
    op.execute(f"""
        INSERT INTO station_search (id, {", ".join(_COLUMNS)})
        SELECT id, {", ".join(_COLUMNS)} FROM stations
        WHERE feed_state = 'active' AND interconnected AND geom IS NOT NULL""")

    # Keyset pagination by name walks this index; the partial predicate is the visibility rule.
    op.execute("CREATE INDEX ix_stations_search_name ON stations (name, id) "
               "WHERE feed_state = 'active' AND interconnected")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_stations_search_name")
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_truncate ON stations")
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_upd ON stations")
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_ins_del ON stations")
    op.execute("DROP FUNCTION IF EXISTS zh_station_search_truncate()")
    op.execute("DROP FUNCTION IF EXISTS zh_station_search_sync()")
    op.execute("DROP TABLE IF EXISTS station_search")
    op.execute("DROP TABLE IF EXISTS api_rate")
    op.drop_index("ix_api_keys_owner_user_id", table_name="api_keys")
    op.drop_table("api_keys")

