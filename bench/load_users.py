"""The locust users of ``python -m bench load`` (``bench/bench_load.py`` runs locust on this file).

Two kinds of simulated users against ``zhcharge serve``:

* :class:`MapUser` (3 of 4): a citizen on the map. Starts somewhere stations are (a sampled
  station) at a zoom drawn from how people use a charging map (mostly city and street level, some
  province and country views), then pans, zooms in and out, now and then jumps to another city;
  every view loads the vector tiles of a 1280 x 800 viewport (512 px tiles, as MapLibre asks for
  them) that this user has not loaded before (the browser caches the rest), sometimes searches by
  name (``/api/v1/stations?q=``) and opens a station's popup (``/api/v1/stations/{id}?kwh=30``, what
  the map's popup fetches). Thinks 2-5 s between actions.
* :class:`AppUser` (1 of 4): a third-party app walking the open API: one operator's stations
  (``operator=``) or a box (``bbox=``) 100 at a time, following ``next_cursor`` for up to 5 pages,
  1-3 s apart.

The stations come from ``BENCH_LOAD_DATA`` (a JSON file the runner samples from the benchmark
database: id, lng, lat, name, address, operator). Requests are named by kind and zoom band, so
locust's statistics say which kind is slow.
"""

from __future__ import annotations

import json
import math
import os
import random
import re

from locust import HttpUser, between, task

with open(os.environ["BENCH_LOAD_DATA"], encoding="utf-8") as _fh:
    DATA = json.load(_fh)
STATIONS: list[dict] = DATA["stations"]
OPERATORS: list[str] = DATA["operators"]

#: the zooms a view starts at, weighted: country/province views are rare, city and street common
START_ZOOMS = (4, 6, 8, 10, 11, 12, 13, 14, 15)
START_WEIGHTS = (1, 1, 2, 3, 3, 4, 4, 4, 2)
MIN_Z, MAX_Z = 3, 16
VIEW_W, VIEW_H, TILE_PX = 1280, 800, 512


def _tile_xy(lng: float, lat: float, z: int) -> tuple[float, float]:
    n = 2 ** z
    lat = max(-85.0, min(85.0, lat))
    x = (lng + 180.0) / 360.0 * n
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return x, y


def _band(z: int) -> str:
    return "z3-7" if z < 8 else ("z8-11" if z < 12 else "z12-16")


class MapUser(HttpUser):
    weight = 3
    wait_time = between(2, 5)

    def on_start(self) -> None:
        self.seen: set[tuple[int, int, int]] = set()
        self.jump()

    def jump(self) -> None:
        s = random.choice(STATIONS)
        self.lng, self.lat = s["lng"], s["lat"]
        self.z = random.choices(START_ZOOMS, START_WEIGHTS)[0]
        self.load_view()

    def load_view(self) -> None:
        """The tiles of the viewport not loaded before (a vector source's tiles are 512 px: at map
        zoom z MapLibre asks for tiles z/x/y, each 512 px wide on screen)."""
        tz = self.z
        cx, cy = _tile_xy(self.lng, self.lat, tz)
        half_w, half_h = VIEW_W / TILE_PX / 2, VIEW_H / TILE_PX / 2
        n = 2 ** tz
        for ty in range(math.floor(cy - half_h), math.floor(cy + half_h) + 1):
            for tx in range(math.floor(cx - half_w), math.floor(cx + half_w) + 1):
                if not 0 <= ty < n:
                    continue
                key = (tz, tx % n, ty)
                if key in self.seen:
                    continue
                self.seen.add(key)
                self.client.get(f"/tiles/stations/{tz}/{tx % n}/{ty}.mvt", name=f"tile {_band(tz)}")

    @task(6)
    def pan(self) -> None:
        # about half a viewport in a random direction
        angle = random.uniform(0, 2 * math.pi)
        deg_per_px = 360.0 / (TILE_PX * 2 ** self.z)
        self.lng += math.cos(angle) * VIEW_W * 0.5 * deg_per_px
        self.lat = max(-60.0, min(70.0, self.lat + math.sin(angle) * VIEW_H * 0.5 * deg_per_px
                                  * math.cos(math.radians(self.lat))))
        self.load_view()

    @task(4)
    def zoom(self) -> None:
        self.z = max(MIN_Z, min(MAX_Z, self.z + random.choice((-2, -1, 1, 1, 2))))
        self.load_view()

    @task(1)
    def another_city(self) -> None:
        self.jump()

    @task(2)
    def search(self) -> None:
        """What people type: a place (the address without its number), a station's name without its
        number, or the first characters of a name."""
        s = random.choice(STATIONS)
        q = random.choice((re.sub(r"[0-9]+号?$", "", s["address"] or "") or s["name"][:4],
                           re.sub(r"[0-9]+$", "", s["name"]), s["name"][:4]))
        self.client.get("/api/v1/stations", params={"q": q, "limit": 10}, name="search q=")

    @task(3)
    def popup(self) -> None:
        s = random.choice(STATIONS)
        self.client.get(f"/api/v1/stations/{s['id']}", params={"kwh": 30}, name="station popup")


class AppUser(HttpUser):
    weight = 1
    wait_time = between(1, 3)

    @task
    def walk(self) -> None:
        if random.random() < 0.5:
            params = {"operator": random.choice(OPERATORS), "limit": 100}
            name = "api page operator="
        else:
            s = random.choice(STATIONS)
            d = random.choice((0.2, 0.5, 1.0))
            params = {"bbox": f"{s['lng'] - d:.4f},{s['lat'] - d:.4f},{s['lng'] + d:.4f},{s['lat'] + d:.4f}",
                      "limit": 100}
            name = "api page bbox="
        for _page in range(random.randint(1, 5)):
            with self.client.get("/api/v1/stations", params=params, name=name, catch_response=True) as r:
                if r.status_code != 200:
                    r.failure(f"HTTP {r.status_code}")
                    return
                cursor = r.json().get("next_cursor")
            if not cursor:
                return
            params = {**params, "cursor": cursor}
            self.wait()
