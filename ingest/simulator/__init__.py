"""Operator simulator: seeded Zhuhai charging operators serving T/CEC 102 over HTTP.

``generate_city`` builds the data (pure), ``build_app`` serves it, ``simulate_operator`` is
the click command. See the module docstrings of ``city``, ``server`` and ``state``.
"""

from ingest.simulator.city import SimOperator, SimStation, generate_city
from ingest.simulator.config import Faults, PushTarget, SimConfig, default_push_secrets

__all__ = [
    "Faults", "PushTarget", "SimConfig", "SimOperator", "SimStation", "build_app",
    "default_push_secrets", "generate_city",
]


def build_app(config: SimConfig | None = None):  # noqa: ANN201 - lazy: keeps litestar out of city imports
    from ingest.simulator.server import build_app as _build

    return _build(config)
