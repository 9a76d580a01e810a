"""feed: push replay protection, issued tokens, content hashes, the status-push function

Revision ID: 0200
Revises: 0001
Create Date: 2026-11-24 18:15:00

Decisions recorded here:

* ``feed_push_seen`` remembers (operator, TimeStamp second, Seq) of every accepted push with its
  Sig. Rows older than the TimeStamp window are useless (the window check rejects such pushes
  first) and are pruned by the scheduler (``ingest.receiver.prune_seen``).
* ``feed_tokens`` holds the SHA-256 of every AccessToken we issued, so a token issued by one app
  process is accepted by every other one.
* ``stations.geom``/``geom_3857``/``lng_gcj02``/``lat_gcj02`` become nullable, guarded by a CHECK
  that only *rejected* stations may lack a position: a station whose coordinates are not numbers
  is still stored (rejected, with its reason) instead of getting a fake POINT(0 0) that some map
  could one day draw in the Gulf of Guinea.
* ``stations.content_hash`` (MD5 of the normalised StationInfo plus what else feeds the row)
  makes "unchanged" a cheap comparison and keeps repeated syncs from rewriting rows.
* ``feed_store_status_push`` does a status push in one round trip: replay check, upsert of the
  connector status, the station's free count and availability, and the data version bump.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0200"
down_revision = "0001"
branch_labels = ("feed",)
depends_on = None


PUSH_FUNCTION = r"""
CREATE OR REPLACE FUNCTION feed_store_status_push(
    p_operator text, p_ts timestamptz, p_seq text, p_sig text,
    p_connector text, p_status smallint, p_park smallint, p_lock smallint
) RETURNS text
LANGUAGE plpgsql AS $fn$
-- Returns 'stored' (status changed), 'same' (status repeated; report time refreshed),
-- 'duplicate' (this exact envelope was already stored) or 'seq_reused' (same operator, second
-- and Seq but a different envelope: a sender bug, nothing stored).
DECLARE
    v_prev_sig text;
    v_old smallint;
    v_station bigint;
    v_changed boolean;
BEGIN
    INSERT INTO feed_push_seen (operator_id, ts, seq, sig)
    VALUES (p_operator, p_ts, p_seq, p_sig)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        SELECT sig INTO v_prev_sig FROM feed_push_seen
        WHERE operator_id = p_operator AND ts = p_ts AND seq = p_seq;
        IF upper(v_prev_sig) = upper(p_sig) THEN
            RETURN 'duplicate';
        END IF;
        RETURN 'seq_reused';
    END IF;
    -- last_push_at moves at most every 5 s: a hot row per operator would serialise its pushes.
    UPDATE feed_endpoints SET last_push_at = now()
    WHERE operator_id = p_operator AND (last_push_at IS NULL OR last_push_at < now() - interval '5 seconds');

    SELECT status INTO v_old FROM connector_status
    WHERE operator_id = p_operator AND connector_id = p_connector FOR UPDATE;
    v_changed := v_old IS DISTINCT FROM p_status;

    INSERT INTO connector_status AS cs (operator_id, connector_id, status, park_status, lock_status,
                                        source, status_since, updated_at)
    VALUES (p_operator, p_connector, p_status, p_park, p_lock, 'push', now(), now())
    ON CONFLICT (operator_id, connector_id) DO UPDATE SET
        status = EXCLUDED.status,
        park_status = EXCLUDED.park_status,
        lock_status = EXCLUDED.lock_status,
        source = 'push',
        status_since = CASE WHEN cs.status IS DISTINCT FROM EXCLUDED.status THEN now()
                            ELSE cs.status_since END,
        updated_at = now();

    IF NOT v_changed THEN
        RETURN 'same';
    END IF;

    SELECT station_pk INTO v_station FROM connectors
    WHERE operator_id = p_operator AND connector_id = p_connector;
    IF v_station IS NOT NULL THEN
        -- Same rules as sql/queries/refresh_station_summary.sql, for the one station only.
        UPDATE stations s
        SET connectors_free = agg.free,
            availability = agg.availability,
            status_changed_at = now(),
            updated_at = now()
        FROM (
            SELECT count(*) FILTER (WHERE cs.status = 1) AS free,
                   CASE WHEN st.station_status <> 50 THEN 'offline'
                        WHEN count(*) FILTER (WHERE cs.status = 1) > 0 THEN 'free'
                        WHEN count(*) FILTER (WHERE cs.status IN (2, 3, 4)) > 0 THEN 'busy'
                        WHEN count(cs.status) > 0 THEN 'offline'
                        ELSE 'unknown' END AS availability
            FROM stations st
            JOIN connectors c ON c.station_pk = st.id
            LEFT JOIN connector_status cs
                   ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
            WHERE st.id = v_station
            GROUP BY st.station_status
        ) agg
        WHERE s.id = v_station;

        -- Bump the stations layer version. A concurrent push that holds the row lock is bumping
        -- it right now, so skipping keeps 1,000+ pushes/s from queueing on one row.
        PERFORM 1 FROM data_versions WHERE layer = 'stations' FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE data_versions SET version = version + 1, updated_at = now() WHERE layer = 'stations';
        ELSIF NOT EXISTS (SELECT 1 FROM data_versions WHERE layer = 'stations') THEN
            INSERT INTO data_versions (layer, version) VALUES ('stations', 2) ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN 'stored';
END
$fn$;
"""


def upgrade() -> None:
    op.create_table(
        "feed_push_seen",
        sa.Column("operator_id", sa.String(9), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.String(4), nullable=False),
        sa.Column("sig", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("operator_id", "ts", "seq", name=op.f("pk_feed_push_seen")),
    )
    op.create_index("ix_feed_push_seen_ts", "feed_push_seen", ["ts"])
    op.create_table(
        "feed_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("operator_id", sa.String(9), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_feed_tokens")),
    )
    op.create_index("ix_feed_tokens_expires_at", "feed_tokens", ["expires_at"])
    op.add_column("stations", sa.Column("content_hash", sa.String(32), nullable=True))
    op.add_column("feed_endpoints", sa.Column("last_error", sa.Text(), nullable=True))
    for col in ("geom", "geom_3857", "lng_gcj02", "lat_gcj02"):
        op.alter_column("stations", col, nullable=True)
    op.create_check_constraint(
        "position", "stations",
        "feed_state = 'rejected' OR (geom IS NOT NULL AND geom_3857 IS NOT NULL "
        "AND lng_gcj02 IS NOT NULL AND lat_gcj02 IS NOT NULL)",
    )
    op.create_index("ix_equipment_operator_station", "equipment", ["operator_id", "station_pk"])
    op.execute(PUSH_FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS feed_store_status_push(text, timestamptz, text, text, text, "
        "smallint, smallint, smallint)"
    )
    op.drop_index("ix_equipment_operator_station", table_name="equipment")
    op.drop_constraint(op.f("ck_stations_position"), "stations", type_="check")
    # Rejected stations without a position cannot survive the NOT NULL of schema 0001.
    op.execute("DELETE FROM stations WHERE geom IS NULL OR geom_3857 IS NULL "
               "OR lng_gcj02 IS NULL OR lat_gcj02 IS NULL")
    for col in ("geom", "geom_3857", "lng_gcj02", "lat_gcj02"):
        op.alter_column("stations", col, nullable=False)
    op.drop_column("feed_endpoints", "last_error")
    op.drop_column("stations", "content_hash")
    op.drop_index("ix_feed_tokens_expires_at", table_name="feed_tokens")
    op.drop_table("feed_tokens")
    op.drop_index("ix_feed_push_seen_ts", table_name="feed_push_seen")
    op.drop_table("feed_push_seen")
