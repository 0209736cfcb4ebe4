"""Reading a TOML file the user wrote (a plan, a roster), with the file named in every error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import CompanionError

__all__ = ["read_toml"]


def read_toml(
    path: Path, what: str, error: type[CompanionError], *, hint: str = ""
) -> dict[str, Any]:
    """The parsed contents of ``path``; ``error`` (naming ``what`` it is) when it cannot be
    read or is not TOML, with ``hint`` after a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text ({exc.reason})") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}{hint}") from exc
