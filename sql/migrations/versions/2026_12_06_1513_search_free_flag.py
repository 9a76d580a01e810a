"""search: the narrow table's update trigger fires when a station's free flag changes, not its free count

Revision ID: 1513
Revises: 1512
Create Date: 2026-12-06 15:50:00

``station_search`` keeps ``free`` = ``connectors_free > 0``; its row trigger on ``stations`` watched
``connectors_free`` itself, so every status push that changed a station's free count ran
``zh_station_search_sync`` (an upsert that then changed nothing): 8,583 calls for 358 changed rows in
18,000 pushes (issue 18, bench ``feed``). The trigger now watches the flag; the other columns as at
1400.
"""
from __future__ import annotations

from alembic import op

revision = "1513"
down_revision = "1512"
branch_labels = None
depends_on = ("1400",)

# the columns of 1400's trigger, in its order
_WATCHED = ("operator_id", "district_adcode", "station_type", "scale", "facility_types", "payments",
            "connectors_free", "max_power_kw", "geom", "id", "feed_state", "interconnected", "price_now")


def _trigger(free: str) -> str:
    changed = " OR ".join(free if c == "connectors_free" else f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED)
    return ("CREATE TRIGGER trg_station_search_upd AFTER UPDATE ON stations "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION zh_station_search_sync()")


def upgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_upd ON stations")
    op.execute(_trigger("(OLD.connectors_free > 0) IS DISTINCT FROM (NEW.connectors_free > 0)"))


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_upd ON stations")
    op.execute(_trigger("OLD.connectors_free IS DISTINCT FROM NEW.connectors_free"))
