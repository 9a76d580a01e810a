"""data quality: the monthly data-quality table per operator and station, kept for the regulators' page

Revision ID: 1520
Revises: (none: a root of its own branch ``data_quality``)
Depends on: 1500 (reliability: the status history it is computed from)
Create Date: 2026-12-06 15:20:00

Decisions recorded here (issue 16, item 5; see ``services.reliability.quality``):

* The table of a month is computed from the whole month's status history (runs of one status,
  changes per station), the orders and the archives; over 30,000 connectors that is tens of
  seconds, too slow for a page and for a six-month trend. So a month's figures are stored here
  and refreshed by the data-quality job (the current month every ``REFRESH_S``, a closed month
  once more after it closed); a page computes and stores only a month that is missing.
* ``data_quality_runs``: which months are computed, when, and how long it took (a month with no
  operator is computed too). ``data_quality_months``: one row per (month, operator): ``figures``
  (the table's row) and ``details`` (the contradictions, stuck connectors and suspect stations behind
  the counts, for the operator's rows to fix). ``data_quality_stations``: one row per (month,
  station) for the per-station sheet and the operator detail page.
* Figures are jsonb (the columns are the module's to define and grow, read and written as a
  whole); no models. Stations cascade; operators are kept by OperatorID as in ``charge_orders``.
* Its own branch, not the ``reliability`` branch: it only adds tables and depends on 1500.
"""
from __future__ import annotations

from alembic import op

revision = "1520"
down_revision = None
branch_labels = ("data_quality",)
depends_on = ("1500",)

UPGRADE = """
CREATE TABLE data_quality_runs (
    month date NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    seconds real,
    CONSTRAINT pk_data_quality_runs PRIMARY KEY (month)
);
CREATE TABLE data_quality_months (
    month date NOT NULL,
    operator_id varchar(9) NOT NULL,
    figures jsonb NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    computed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_data_quality_months PRIMARY KEY (month, operator_id)
);
CREATE TABLE data_quality_stations (
    month date NOT NULL,
    station_pk bigint NOT NULL,
    operator_id varchar(9) NOT NULL,
    figures jsonb NOT NULL,
    CONSTRAINT pk_data_quality_stations PRIMARY KEY (month, station_pk),
    CONSTRAINT fk_data_quality_stations_station_pk_stations
        FOREIGN KEY (station_pk) REFERENCES stations (id) ON DELETE CASCADE
);
CREATE INDEX ix_data_quality_stations_operator ON data_quality_stations (month, operator_id);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP TABLE data_quality_stations; DROP TABLE data_quality_months; DROP TABLE data_quality_runs;")
