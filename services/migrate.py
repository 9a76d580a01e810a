"""Schema migrations (Alembic, scripts under ``sql/migrations``), run from code.

Every domain's migrations form their own branch off the foundation revision, so domains can
land independently; ``upgrade`` always goes to ``heads``.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

__all__ = ["alembic_config", "current_revisions", "downgrade", "head_revisions", "upgrade"]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("sql").joinpath("migrations")))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return cfg


def upgrade(engine: Engine, target: str = "heads") -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def downgrade(engine: Engine, target: str = "base") -> None:
    with engine.begin() as conn:
        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, target)


def current_revisions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


def head_revisions(engine: Engine) -> list[str]:
    """The revisions ``alembic_version`` holds after ``upgrade heads``.

    A branch head that another branch depends on (``depends_on``) is not kept in
    ``alembic_version`` once the dependent revision is applied, so it is left out here too.
    """
    script = ScriptDirectory.from_config(alembic_config(engine.url.render_as_string(hide_password=False)))
    heads = set(script.get_heads())
    implied: set[str] = set()
    stack = list(heads)
    seen: set[str] = set()
    while stack:
        rev = script.get_revision(stack.pop())
        if rev is None or rev.revision in seen:
            continue
        seen.add(rev.revision)
        for parent in rev._all_down_revisions:
            implied.add(parent)
            stack.append(parent)
    return sorted(heads - implied)
