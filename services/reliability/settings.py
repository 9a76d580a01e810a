"""Settings of the status history and reliability measures (``ZHCHARGE_RELIABILITY_*``).

Read when the app starts (``portal_site.routes.reliability.on_startup``), never at import. Kept
beside its domain while ``services/settings.py`` is being changed by other work; ``Settings``
can take it as a group later without changing a variable name.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from services.settings import _config

__all__ = ["ReliabilitySettings"]


class ReliabilitySettings(BaseSettings):
    """Freshness, history retention and the background job."""

    model_config = _config("ZHCHARGE_RELIABILITY_")

    silence_s: int = Field(default=1800, ge=60, description="a connector with no push or pull for this long is "
                           "unknown (never free) until its next report; keep it above the 300 s in which an "
                           "unchanged pulled status is re-stamped, plus the status pull interval")
    retention_months: int = Field(default=13, ge=1, description="months of status history kept (whole China "
                                  "months; older partitions are dropped)")
    daily_retention_months: int = Field(default=25, ge=1, description="months of daily uptime aggregates kept")
    partitions_ahead: int = Field(default=2, ge=1, le=24, description="monthly history partitions made ahead")
    rollup_margin_s: int = Field(default=900, ge=0, description="a day is aggregated this long after it ended "
                                 "(late pushes and silences land first)")
    job_interval_s: float = Field(default=60.0, ge=5.0, description="how often the job marks silences and "
                                  "keeps partitions and aggregates up to date")
