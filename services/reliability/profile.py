"""The week profile of a station ("usually busy around 18:00"): per weekday and hour (China time),
the share of its observed connector-time that was occupied (statuses 2, 3, 4), from the daily
aggregates of the last weeks (``station_daily``)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.engine import Connection

from services.search.prepared import prepared_rows, to_pyformat

__all__ = ["occupancy_profile"]

# prepared once per connection, like the rest of the station detail (services.search.prepared)
_DAYS = to_pyformat("SELECT day, occupied_s, observed_s FROM station_daily "
                    "WHERE station_pk = :pk AND day >= :since AND day < :until")


def occupancy_profile(conn: Connection, station_pk: int, today: date, *, weeks: int = 8,
                      min_observed_s: int = 3600) -> list[list[float | None]]:
    """7 × 24 shares (Monday first, hour 0 first) over the ``weeks`` weeks before ``today``; ``None``
    where less than ``min_observed_s`` connector-seconds were observed in that hour of the week."""
    occupied = [[0] * 24 for _ in range(7)]
    observed = [[0] * 24 for _ in range(7)]
    for row in prepared_rows(conn, _DAYS, {"pk": station_pk, "since": today - timedelta(weeks=weeks),
                                           "until": today}):
        day, occ, obs = row["day"], row["occupied_s"], row["observed_s"]
        wd = day.weekday()
        for h in range(24):
            occupied[wd][h] += occ[h]
            observed[wd][h] += obs[h]
    return [[round(occupied[d][h] / observed[d][h], 4) if observed[d][h] >= min_observed_s else None
             for h in range(24)] for d in range(7)]
