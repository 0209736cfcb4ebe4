"""``python -m companion``: the same as the ``companion`` command."""

from __future__ import annotations

from .cli import main

main()
