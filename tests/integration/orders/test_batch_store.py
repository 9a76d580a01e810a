"""Orders pushed at the same time are checked and stored together (``check_and_store``: the
connectors' contexts in one query, one statement for the batch): each gets the verdict it gets
alone, an unknown connector included, and a second batch reads the contexts from the cache."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import text

from services.orders.checks import read_order
from services.orders.store import PendingOrder, _CONTEXTS, check_and_store, stored_order
from services.prices.tariff import CHINA_TZ
from tests.orders_helpers import GUANGDONG, build_world, pushed_order

_SEQ = itertools.count(9001)  # build_world pushes 0001.. in the same second


def _pending(operator_id: str, data: dict) -> PendingOrder:
    envelope = SimpleNamespace(timestamp=datetime.now(UTC).replace(microsecond=0), seq=f"{next(_SEQ):04d}",
                               raw={"Sig": secrets.token_hex(16)})
    return PendingOrder(operator_id, read_order(data), data, envelope, datetime.now(CHINA_TZ))


def test_a_batch_gets_each_orders_own_verdict(engine) -> None:  # noqa: ANN001
    w = build_world(engine)
    op, day = w.a["operator_id"], w.days["D-2"]
    clean = pushed_order(GUANGDONG, w.connectors["c1"], day, 9, 60, 60)
    over = pushed_order(GUANGDONG, w.connectors["c2"], day, 14, 60, 60, bump="0.2")
    nowhere = pushed_order(GUANGDONG, "NO_SUCH_CONNECTOR", day, 10, 30, 60)
    _CONTEXTS.clear()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        results = check_and_store(conn, [_pending(op, clean), _pending(op, over), _pending(op, nowhere)])
    answers = [stored_order(*r) for r in results]
    assert [a.confirm_result for a in answers] == [0, 1, 1]
    assert answers[0].verdict.at_tariff and not answers[0].verdict.findings
    assert answers[1].verdict.overcharged and answers[1].verdict.overcharge > 0
    assert any(f.check == "reference" for f in answers[2].verdict.findings), answers[2].verdict.findings
    # the known connectors' contexts are cached, the unknown one never is
    assert (op, w.connectors["c1"]) in _CONTEXTS and (op, "NO_SUCH_CONNECTOR") not in _CONTEXTS
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT start_charge_seq, confirm_result FROM charge_orders "
                                      "WHERE operator_id = :op AND latest"), {"op": op}).all())
    assert rows[clean["StartChargeSeq"]] == 0 and rows[over["StartChargeSeq"]] == 1
    assert rows[nowhere["StartChargeSeq"]] == 1
    # the same orders again, in another batch: duplicates, answered as the first time
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        again = [stored_order(*r) for r in check_and_store(conn, [_pending(op, clean), _pending(op, over)])]
    assert [(a.confirm_result, a.duplicate) for a in again] == [(0, True), (1, True)]
