"""Golden test vectors of the wire protocol: the JSON files beside this module.

The JSON is what a firmware author in C or MicroPython checks their codec
against, byte for byte; ``PROTOCOL.md`` here explains every field. They are
built by ``scripts/generate_vectors.py`` in the repository, which is not shipped.
"""

from __future__ import annotations
