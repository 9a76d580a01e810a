"""SQLAlchemy models. The schema itself is built by the Alembic migrations in ``sql/migrations``.

Each domain keeps its tables in its own module; importing this package registers them all on
``Base.metadata`` (used by Alembic's autogenerate for review, never by ``create_all``).
"""

from services.models.base import Base
from services.models import core, feed  # noqa: F401  (register tables)
from services import workflow  # noqa: F401,E402  (workflow_events)
from services.models import accounts  # noqa: F401,E402  (users, sessions, codes, outbox, news, pages)
from services.models import messaging  # noqa: F401,E402  (messages, contacts, feedback, tasks, snapshots)
from services.models import archives  # noqa: F401,E402  (station/report/facility archives, interconnection)
from services.models import subsidy  # noqa: F401,E402  (subsidy rules, applications, accounting runs)

__all__ = ["Base"]
