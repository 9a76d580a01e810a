"""orders: pushed orders stored in batches (``zh_store_orders``), the receiver's group commit

Revision ID: 1403
Revises: 1402
Create Date: 2026-12-06 09:10:00

Measured through the real receiver (bench ``orders``): 414 orders/s under load, each order a
transaction and a commit of its own. ``zh_store_orders`` stores a batch of concurrent orders in one
statement and one commit, ``zh_store_order`` (1401, unchanged) for each. The function is
``sql/functions/order_store.sql`` as it was at this revision (inline, frozen).
"""
from __future__ import annotations

from alembic import op

revision = "1403"
down_revision = "1402"
branch_labels = None
depends_on = None

FUNCTION = r"""
-- A batch of pushed orders in one statement and one commit (migration 1403; the receiver's group
-- commit, ingest.group_commit): zh_store_order for each, in the order given (the receiver sorts a batch
-- by operator and StartChargeSeq, so concurrent batches take the per-order locks in one order). Each
-- element carries zh_store_order's arguments by name (details, findings and raw as JSON text); the rows
-- returned are their results, in that order.
CREATE OR REPLACE FUNCTION zh_store_orders(p_orders jsonb)
RETURNS TABLE (outcome text, confirm_result smallint, version smallint)
LANGUAGE plpgsql AS $fn$
DECLARE
    o record;
BEGIN
    FOR o IN
        SELECT x.* FROM ROWS FROM (jsonb_to_recordset(p_orders) AS (
            op text, ts timestamptz, envelope_seq text, sig text, seq text, digest text, connector text,
            station bigint, start timestamptz, "end" timestamptz, day date, power numeric, elec numeric,
            service numeric, money numeric, stop smallint, sum_period smallint, details text, confirm smallint,
            findings text, at_tariff boolean, overcharge numeric, tariff_versions bigint[], raw text))
        WITH ORDINALITY AS x(op, ts, envelope_seq, sig, seq, digest, connector, station, start, "end", day, power,
                             elec, service, money, stop, sum_period, details, confirm, findings, at_tariff,
                             overcharge, tariff_versions, raw, n)
        ORDER BY x.n
    LOOP
        RETURN QUERY SELECT * FROM zh_store_order(
            o.op, o.ts, o.envelope_seq, o.sig, o.seq, o.digest, o.connector, o.station, o.start, o."end", o.day,
            o.power, o.elec, o.service, o.money, o.stop, o.sum_period, o.details::jsonb, o.confirm,
            o.findings::jsonb, o.at_tariff, o.overcharge, o.tariff_versions, o.raw::jsonb);
    END LOOP;
END
$fn$;
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS zh_store_orders(jsonb)")
