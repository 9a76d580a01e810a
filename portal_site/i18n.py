"""Chinese UI with an English switch: ``?lang=en`` (remembered in a cookie) or ``lang=zh``.

Templates call ``t('中文', 'English')``; the language is the request's, so pages stay cacheable
per language and no global state is involved.
"""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context

__all__ = ["lang_of", "t", "register"]

LANGS = ("zh", "en")


def lang_of(request: Any) -> str:
    if request is None:
        return "zh"
    lang = request.query_params.get("lang") or request.cookies.get("lang") or "zh"
    return lang if lang in LANGS else "zh"


@pass_context
def t(ctx: Any, zh: str, en: str) -> str:
    return en if lang_of(ctx.get("request")) == "en" else zh


@pass_context
def current_lang(ctx: Any) -> str:
    return lang_of(ctx.get("request"))


def register(env: Any) -> None:
    env.globals["t"] = t
    env.globals["current_lang"] = current_lang
