"""reliability: each station's 30-day figures, precomputed for the open API's filter and sort

Revision ID: 1501
Revises: 1500
Depends on: 0301 (search: ``station_search`` as it is since then)
Create Date: 2026-12-06 17:10:00

Decisions recorded here (issue 16, the public part; see ``services.reliability.summary``):

* ``station_reliability``: per station, the uptime of the last 30 days (``up4``: uptime × 10,000
  rounded, 0..10,000; NULL when nothing was observed), its faults and the last one. Written by the
  reliability job after its aggregates (hourly and after each whole day), only the rows that
  changed; ``station_reliability_window`` (one row) says which window the figures cover.
* ``station_search.up4``: the same figure on the narrow search table, so ``min_uptime`` is a column
  predicate and ``sort=uptime`` an index scan at national scale (``ix_station_search_uptime`` on
  ``(coalesce(-up4, 1), id)``: highest uptime first, stations without one last, ties by id).
  The job updates it with ``station_reliability``; a row the search trigger inserts (a station
  that becomes visible) takes its figure from ``station_reliability`` in a BEFORE INSERT trigger
  (``sql/functions/station_reliability.sql`` as it is at this revision, inline below).
"""
from __future__ import annotations

from alembic import op

revision = "1501"
down_revision = "1500"
branch_labels = None
depends_on = ("0301",)

TABLES = """
CREATE TABLE station_reliability (
    station_pk bigint NOT NULL,
    up4 smallint,
    faults integer NOT NULL,
    last_fault_at timestamptz,
    CONSTRAINT pk_station_reliability PRIMARY KEY (station_pk),
    CONSTRAINT ck_station_reliability_up4 CHECK (up4 BETWEEN 0 AND 10000),
    CONSTRAINT fk_station_reliability_station_pk_stations
        FOREIGN KEY (station_pk) REFERENCES stations (id) ON DELETE CASCADE
);
CREATE TABLE station_reliability_window (
    one boolean NOT NULL DEFAULT true,
    since timestamptz NOT NULL,
    until timestamptz NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_station_reliability_window PRIMARY KEY (one),
    CONSTRAINT ck_station_reliability_window_one CHECK (one)
);
ALTER TABLE station_search ADD COLUMN up4 smallint;
CREATE INDEX ix_station_search_uptime ON station_search ((coalesce(- up4, 1)), id);
"""

# sql/functions/station_reliability.sql as it is at this revision
FUNCTIONS = """
-- A row the search trigger inserts into station_search (a station that becomes visible) takes its
-- 30-day uptime from station_reliability; the reliability job keeps existing rows in step.
-- (An INSERT ... ON CONFLICT DO UPDATE fires it too; the update path does not write up4.)
CREATE OR REPLACE FUNCTION zh_station_search_uptime() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.up4 := (SELECT r.up4 FROM station_reliability r WHERE r.station_pk = NEW.id);
    RETURN NEW;
END
$fn$;
DROP TRIGGER IF EXISTS trg_station_search_uptime ON station_search;
CREATE TRIGGER trg_station_search_uptime BEFORE INSERT ON station_search
    FOR EACH ROW EXECUTE FUNCTION zh_station_search_uptime();
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("""
        DROP TRIGGER IF EXISTS trg_station_search_uptime ON station_search;
        DROP FUNCTION IF EXISTS zh_station_search_uptime();
        DROP INDEX IF EXISTS ix_station_search_uptime;
        ALTER TABLE station_search DROP COLUMN up4;
        DROP TABLE station_reliability_window, station_reliability;
    """)
