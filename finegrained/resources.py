"""The generic memory guard: sizes, limits and :func:`check_memory`, used before anything large is allocated.

Each algorithm's own estimate lives beside it; :func:`check_memory` compares an estimate with a limit. Its error
names no command-line option: the CLI adds the hint (``--max-memory``).
"""

from __future__ import annotations

import math

from instances.errors import ResourceLimitError

# one guard for every layer: instances owns it (it may not import upwards), the top layer reuses it
from instances.io import default_memory_limit, parse_byte_size, physical_memory  # noqa: F401


def parse_size(text: str) -> int:
    """Parse ``"512M"``, ``"8G"``, ``"1.5GiB"``, ``"1000000"`` into bytes (:func:`instances.io.parse_byte_size`).

    Examples
    --------
    >>> parse_size("1.5G"), parse_size("512MiB"), parse_size("4096")
    (1610612736, 536870912, 4096)
    """
    return parse_byte_size(text, "memory size")


def format_bytes(n: float) -> str:
    """Human-readable size with binary units; sizes beyond 1024 PiB as a power of two.

    Examples
    --------
    >>> format_bytes(1536), format_bytes(2**70), format_bytes(3 * 2**1000)
    ('1.5 KiB', '2^70.0 bytes', '2^1001.6 bytes')
    """
    if n >= 2**60:
        return f"2^{math.log2(n):.1f} bytes"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_memory(needed: int, limit: int | None, what: str) -> None:
    """Raise :class:`ResourceLimitError` naming ``needed`` bytes if it exceeds ``limit`` (default: half of RAM)."""
    limit = default_memory_limit() if limit is None else limit
    if needed > limit:
        raise ResourceLimitError(
            f"{what} would need about {format_bytes(needed)}"
            f"{f' ({needed} bytes)' if needed < 2**60 else ''} of memory, over the limit of "
            f"{format_bytes(limit)}"
        )
