"""Golden test vectors of the wire protocol (JSON files beside this module) and their generator.

The JSON is what a firmware author in C or MicroPython checks their codec
against, byte for byte; ``PROTOCOL.md`` here explains every field.
Regenerate with ``python -m firmware_protocol.vectors.generate``.
"""

from __future__ import annotations
