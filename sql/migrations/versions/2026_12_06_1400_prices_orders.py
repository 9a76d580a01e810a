"""prices and orders: versioned tariffs, the city's price cap, charge orders, reconciliations

Revision ID: 1400
Revises: (none: a root of its branch; depends_on implies 0001)
Depends on: 0200 (feed), 0303 (the search sync function this one extends), 0400 (users)
Create Date: 2026-12-06 09:00:00

Decisions recorded here (T/CEC 102 part 3; see ``services.prices`` and ``services.orders``):

* ``tariffs`` holds each distinct day of prices once (``digest`` of the periods): a city's
  30,000 connectors share a few hundred tariffs, and OCPI's ``tariff_ids`` point at these rows.
* ``connector_tariffs`` is the history: one row per connector and tariff version, with the time
  it was first and last seen and ``valid_to`` when a newer version replaced it, so the price in
  force at any past moment is a range lookup. A policy that breaks the rules is kept with its
  ``problems`` (and the policy as answered in ``raw``) for the operator to see; ``source`` says
  whether it came from ``query_equip_business_policy`` or the StationInfo fee texts.
* ``station_tariffs`` is each station's cheapest price per moment of the day (what a driver
  pays at least there), and ``stations.price_now``/``price_until`` its value now and when it
  next changes: a job moves them at period boundaries, so search, tiles and exports read one
  number. ``station_search.price4`` is ``price_now`` × 10,000 (the narrow table keeps integers).
* ``price_caps`` keeps the regulator's cap with its history (the cap in force at a moment is the
  latest ``valid_from`` before it).
* ``charge_orders``: every version of every order, idempotent on (operator, StartChargeSeq,
  content digest); ``latest`` marks the version that counts. Findings, ConfirmResult and the
  price execution (``at_tariff``, ``overcharge_yuan``) are stored with it. ``day`` is the China
  date the order ended (the reconciliation day).
* ``order_checks``: each ``check_charge_orders`` received, its list and our answer;
  ``reconcile_state`` on the order says what the latest list said of it.
* No models: these tables are read and written with SQL (``env.py`` leaves model-less tables to
  the migrations), except the two ``stations`` columns, which the ``Station`` model declares.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1400"
down_revision = None  # depends_on implies 0001
branch_labels = ("prices",)
depends_on = ("0200", "0303", "0400")

# The search copy as of 0303, plus price4 (the function is frozen here, as 0303 froze its own).
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
        INSERT INTO station_search (id, op, district, st, scale, ft, pay, free, power10, geom, price4)
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
                NEW.connectors_free > 0, (NEW.max_power_kw * 10)::integer, NEW.geom,
                (NEW.price_now * 10000)::integer)
        ON CONFLICT (id) DO UPDATE SET op = EXCLUDED.op, district = EXCLUDED.district, st = EXCLUDED.st,
            scale = EXCLUDED.scale, ft = EXCLUDED.ft, pay = EXCLUDED.pay, free = EXCLUDED.free,
            power10 = EXCLUDED.power10, geom = EXCLUDED.geom, price4 = EXCLUDED.price4
        WHERE (station_search.op, station_search.district, station_search.st, station_search.scale,
               station_search.ft, station_search.pay, station_search.free, station_search.power10,
               station_search.price4)
              IS DISTINCT FROM (EXCLUDED.op, EXCLUDED.district, EXCLUDED.st, EXCLUDED.scale, EXCLUDED.ft,
                                EXCLUDED.pay, EXCLUDED.free, EXCLUDED.power10, EXCLUDED.price4)
           OR NOT ST_Equals(station_search.geom, EXCLUDED.geom);
    ELSIF TG_OP = 'UPDATE' THEN
        DELETE FROM station_search WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
"""

_WATCHED = ("operator_id", "district_adcode", "station_type", "scale", "facility_types", "payments",
            "connectors_free", "max_power_kw", "geom", "id", "feed_state", "interconnected")


def _update_trigger(columns: tuple[str, ...]) -> str:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    return (f"CREATE TRIGGER trg_station_search_upd AFTER UPDATE ON stations "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION zh_station_search_sync()")


def upgrade() -> None:
    op.execute("""
        CREATE TABLE tariffs (
            id bigint GENERATED BY DEFAULT AS IDENTITY,
            digest char(32) NOT NULL,
            periods jsonb NOT NULL,
            min_total numeric(9, 4) NOT NULL,
            max_total numeric(9, 4) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_tariffs PRIMARY KEY (id),
            CONSTRAINT uq_tariffs_digest UNIQUE (digest)
        )""")
    op.execute("""
        CREATE TABLE connector_tariffs (
            id bigint GENERATED BY DEFAULT AS IDENTITY,
            operator_id varchar(9) NOT NULL,
            connector_id varchar(26) NOT NULL,
            tariff_id bigint REFERENCES tariffs (id),
            source varchar(10) NOT NULL,
            problems text[] NOT NULL DEFAULT '{}',
            raw jsonb,
            first_seen_at timestamptz NOT NULL DEFAULT now(),
            last_seen_at timestamptz NOT NULL DEFAULT now(),
            valid_to timestamptz,
            CONSTRAINT pk_connector_tariffs PRIMARY KEY (id),
            CONSTRAINT ck_connector_tariffs_source CHECK (source IN ('policy', 'fee_text'))
        )""")
    op.execute("CREATE UNIQUE INDEX ux_connector_tariffs_current ON connector_tariffs (operator_id, connector_id) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_connector_tariffs_history ON connector_tariffs (operator_id, connector_id, first_seen_at)")
    op.execute("CREATE INDEX ix_connector_tariffs_tariff ON connector_tariffs (tariff_id) WHERE valid_to IS NULL")
    op.execute("""
        CREATE TABLE station_tariffs (
            station_pk bigint NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
            tariff_id bigint REFERENCES tariffs (id),
            source varchar(10),
            varies boolean NOT NULL DEFAULT false,
            connectors integer NOT NULL DEFAULT 0,
            priced integer NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_station_tariffs PRIMARY KEY (station_pk)
        )""")
    op.execute("""
        CREATE TABLE price_caps (
            id integer GENERATED BY DEFAULT AS IDENTITY,
            yuan_per_kwh numeric(7, 4) NOT NULL,
            basis varchar(10) NOT NULL DEFAULT 'total',
            valid_from timestamptz NOT NULL DEFAULT now(),
            set_by integer REFERENCES users (id) ON DELETE SET NULL,
            note text,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_price_caps PRIMARY KEY (id),
            CONSTRAINT ck_price_caps_basis CHECK (basis IN ('total', 'service')),
            CONSTRAINT ck_price_caps_positive CHECK (yuan_per_kwh > 0)
        )""")
    op.execute("CREATE INDEX ix_price_caps_valid_from ON price_caps (valid_from)")

    op.add_column("stations", sa.Column("price_now", sa.Numeric(7, 4), nullable=True))
    op.add_column("stations", sa.Column("price_until", sa.DateTime(timezone=True), nullable=True))
    op.execute("CREATE INDEX ix_stations_price_until ON stations (price_until) WHERE price_until IS NOT NULL")
    op.execute("ALTER TABLE station_search ADD COLUMN price4 integer")
    op.execute(SEARCH_FUNCTION)
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_upd ON stations")
    op.execute(_update_trigger((*_WATCHED, "price_now")))

    op.execute("""
        CREATE TABLE charge_orders (
            id bigint GENERATED BY DEFAULT AS IDENTITY,
            operator_id varchar(9) NOT NULL,
            start_charge_seq varchar(64) NOT NULL,
            version smallint NOT NULL,
            latest boolean NOT NULL DEFAULT true,
            digest char(32) NOT NULL,
            connector_id varchar(26) NOT NULL,
            station_pk bigint,
            start_time timestamptz NOT NULL,
            end_time timestamptz NOT NULL,
            day date NOT NULL,
            total_power numeric(12, 2) NOT NULL,
            total_elec_money numeric(12, 2) NOT NULL,
            total_service_money numeric(12, 2) NOT NULL,
            total_money numeric(12, 2) NOT NULL,
            stop_reason smallint,
            sum_period smallint,
            details jsonb NOT NULL,
            confirm_result smallint NOT NULL,
            findings jsonb NOT NULL DEFAULT '[]',
            at_tariff boolean,
            overcharge_yuan numeric(12, 4) NOT NULL DEFAULT 0,
            tariff_versions bigint[] NOT NULL DEFAULT '{}',
            raw jsonb NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            reconcile_state varchar(10),
            reconciled_by bigint,
            CONSTRAINT pk_charge_orders PRIMARY KEY (id),
            CONSTRAINT uq_charge_orders_version UNIQUE (operator_id, start_charge_seq, version),
            CONSTRAINT uq_charge_orders_digest UNIQUE (operator_id, start_charge_seq, digest),
            CONSTRAINT ck_charge_orders_reconcile_state
                CHECK (reconcile_state IN ('agreed', 'disputed', 'unlisted'))
        )""")
    op.execute("CREATE UNIQUE INDEX ux_charge_orders_latest ON charge_orders (operator_id, start_charge_seq) "
               "WHERE latest")
    op.execute("CREATE INDEX ix_charge_orders_operator_day ON charge_orders (operator_id, day) WHERE latest")
    op.execute("CREATE INDEX ix_charge_orders_station_day ON charge_orders (station_pk, day) WHERE latest")
    op.execute("CREATE INDEX ix_charge_orders_day ON charge_orders (day) WHERE latest")
    op.execute("""
        CREATE TABLE order_checks (
            id bigint GENERATED BY DEFAULT AS IDENTITY,
            operator_id varchar(9) NOT NULL,
            check_order_seq varchar(64) NOT NULL,
            start_time timestamptz NOT NULL,
            end_time timestamptz NOT NULL,
            order_count integer NOT NULL,
            total_power numeric(14, 2) NOT NULL,
            total_money numeric(14, 2) NOT NULL,
            listed jsonb NOT NULL,
            dispute_count integer NOT NULL DEFAULT 0,
            dispute_power numeric(14, 2) NOT NULL DEFAULT 0,
            dispute_money numeric(14, 2) NOT NULL DEFAULT 0,
            disputes jsonb NOT NULL DEFAULT '[]',
            unlisted jsonb NOT NULL DEFAULT '[]',
            problems text[] NOT NULL DEFAULT '{}',
            received_at timestamptz NOT NULL DEFAULT now(),
            answered_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_order_checks PRIMARY KEY (id),
            CONSTRAINT uq_order_checks_seq UNIQUE (operator_id, check_order_seq)
        )""")
    op.execute("CREATE INDEX ix_order_checks_operator_start ON order_checks (operator_id, start_time)")

    op.drop_constraint(op.f("ck_sync_runs_mode"), "sync_runs", type_="check")
    op.create_check_constraint(op.f("ck_sync_runs_mode"), "sync_runs",
                               "mode IN ('full', 'incremental', 'status', 'push', 'check', 'policy')")


def downgrade() -> None:
    op.execute("DELETE FROM sync_runs WHERE mode = 'policy'")
    op.drop_constraint(op.f("ck_sync_runs_mode"), "sync_runs", type_="check")
    op.create_check_constraint(op.f("ck_sync_runs_mode"), "sync_runs", "mode IN ('full', 'incremental', 'status', 'push', 'check')")
    op.execute("DROP TABLE IF EXISTS order_checks")
    op.execute("DROP TABLE IF EXISTS charge_orders")
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_upd ON stations")
    op.execute(_update_trigger(_WATCHED))
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("m0303", Path(__file__).with_name("2026_11_24_0303_search_noop.py"))
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    op.execute(mod.SEARCH_FUNCTION)
    op.execute("ALTER TABLE station_search DROP COLUMN IF EXISTS price4")
    op.execute("DROP INDEX IF EXISTS ix_stations_price_until")
    op.drop_column("stations", "price_until")
    op.drop_column("stations", "price_now")
    op.execute("DROP TABLE IF EXISTS price_caps")
    op.execute("DROP TABLE IF EXISTS station_tariffs")
    op.execute("DROP TABLE IF EXISTS connector_tariffs")
    op.execute("DROP TABLE IF EXISTS tariffs")
