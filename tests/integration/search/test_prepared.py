"""Prepared statements on SQLAlchemy connections (services.search.prepared): rows, once per
connection, surviving a rollback, and database errors as SQLAlchemy's."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError

from services.search.prepared import prepared_rows, to_pyformat

SQL = to_pyformat("SELECT CAST(:n AS int) + 1 AS m, ':n' AS literal, now()::date = current_date AS today")


def test_rows_once_per_connection_and_after_a_rollback(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        assert prepared_rows(conn, SQL, {"n": 41}) == [{"m": 42, "literal": ":n", "today": True}]
        conn.rollback()
        assert prepared_rows(conn, SQL, {"n": 1})[0]["m"] == 2
        mine = conn.execute(text("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'zh_%' "
                                 "AND statement LIKE '%literal%'")).scalar()
        assert mine == 1 and len(conn.connection.info["zh_prepared"]) >= 1


def test_database_errors_are_sqlalchemy_errors(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        with pytest.raises(DataError):
            prepared_rows(conn, SQL, {"n": "abc"})
        conn.rollback()
        assert prepared_rows(conn, SQL, {"n": 2})[0]["m"] == 3
