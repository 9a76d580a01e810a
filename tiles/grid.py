"""Tile addresses and the cluster grid (Web Mercator, XYZ scheme, 512-pixel display tiles).

>>> TileAddress.parse("3", "6", "3.mvt", max_zoom=22)
TileAddress(z=3, x=6, y=3)
>>> TileAddress.parse("2", "4", "0.mvt", max_zoom=22)
Traceback (most recent call last):
...
services.errors.NotFound: tile x=4 is outside the grid at zoom 2 (0..3)
>>> cluster_cell_size(0, 64) == WORLD_SIZE / 8
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.errors import BadRequest, NotFound

__all__ = ["TileAddress", "WORLD_SIZE", "cluster_cell_size", "cells_per_tile", "tile_bounds_3857"]

WORLD_SIZE = 40075016.685578488  # Web Mercator world width in metres (2 * 20037508.342789244)
DISPLAY_TILE_PX = 512  # MapLibre draws a vector tile 512 pixels wide
_INT = re.compile(r"^[0-9]{1,8}$")
_EXTENSIONS = ("mvt", "pbf")


@dataclass(frozen=True, slots=True)
class TileAddress:
    z: int
    x: int
    y: int

    @classmethod
    def parse(cls, z: str, x: str, y_ext: str, *, max_zoom: int) -> TileAddress:
        """Validate z/x/y from a URL; bad syntax is 400, a tile that cannot exist is 404."""
        y, dot, ext = y_ext.partition(".")
        if dot and ext not in _EXTENSIONS:
            raise NotFound(f"unknown tile format '.{ext}'; use .mvt")
        for name, value in (("z", z), ("x", x), ("y", y)):
            if not _INT.match(value):
                raise BadRequest(f"tile {name} must be a non-negative integer, got {value[:20]!r}", param=name)
        zi, xi, yi = int(z), int(x), int(y)
        if zi > max_zoom:
            raise NotFound(f"zoom {zi} is beyond the maximum zoom {max_zoom}")
        n = 1 << zi
        if xi >= n:
            raise NotFound(f"tile x={xi} is outside the grid at zoom {zi} (0..{n - 1})")
        if yi >= n:
            raise NotFound(f"tile y={yi} is outside the grid at zoom {zi} (0..{n - 1})")
        return cls(zi, xi, yi)

    def path(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"


def cells_per_tile(cell_px: int) -> int:
    """Cluster cells across one tile: a power of two, so cells nest across zooms and tiles."""
    n = max(1, DISPLAY_TILE_PX // max(1, cell_px))
    return 1 << (n.bit_length() - 1)


def cluster_cell_size(z: int, cell_px: int) -> float:
    """Cell edge in Web Mercator metres at zoom ``z`` (≈ ``cell_px`` screen pixels)."""
    return WORLD_SIZE / (1 << z) / cells_per_tile(cell_px)


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of a tile in Web Mercator metres."""
    size = WORLD_SIZE / (1 << z)
    half = WORLD_SIZE / 2
    return (-half + x * size, half - (y + 1) * size, -half + (x + 1) * size, half - y * size)
