"""Memory estimates and limits, computed from sizes alone before anything large is allocated."""

from __future__ import annotations

import os
import re

from instances.errors import ParameterError, ResourceLimitError

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def physical_memory() -> int:
    """Bytes of physical memory, or 8 GiB if the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def default_memory_limit() -> int:
    """Half of physical memory: the rest stays for the system and for BLAS workspaces."""
    return physical_memory() // 2


def parse_size(text: str) -> int:
    """Parse ``"512M"``, ``"8G"``, ``"1.5GiB"``, ``"1000000"`` into bytes.

    Examples
    --------
    >>> parse_size("1.5G"), parse_size("512MiB"), parse_size("4096")
    (1610612736, 536870912, 4096)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:i?B)?\s*", text, flags=re.I)
    if not m:
        raise ParameterError(f"cannot read memory size {text!r}; expected a number with an optional K/M/G/T suffix")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_bytes(n: float) -> str:
    """Human-readable size with binary units."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def chain_memory_bytes(num_vars: int, num_clauses: int) -> int:
    """Peak memory of the k-SAT -> AAttC chain with the exact oracle, as a conservative sum of live arrays.

    ``n_a = 2^ceil(N/2)`` and ``n_b = 2^floor(N/2)`` vectors; OV of dimension ``m`` (uint8 plus int32
    temporaries), Gap-ANN of dimension ``6m`` (uint8 plus the gadget's temporaries), float64 ``Q`` and ``K`` of
    dimension ``12m``, the oracle's scaled copies and its two 128 MiB score tiles.
    """
    n_a, n_b = 2 ** ((num_vars + 1) // 2), 2 ** (num_vars // 2)
    m = max(num_clauses, 1)
    ov = (n_a + n_b) * m * (1 + 8)
    gap = (n_a + n_b) * 6 * m * 4
    q_k = ((n_a + n_b) + 2 * n_b) * 12 * m * 8
    oracle = q_k + 2 * 128 * 2**20
    return int(ov + gap + 2 * q_k + oracle)


def check_memory(needed: int, limit: int | None, what: str) -> None:
    """Raise :class:`ResourceLimitError` naming ``needed`` bytes if it exceeds ``limit`` (default: half of RAM)."""
    limit = default_memory_limit() if limit is None else limit
    if needed > limit:
        raise ResourceLimitError(
            f"{what} would need about {format_bytes(needed)} ({needed} bytes) of memory, over the limit of "
            f"{format_bytes(limit)}; raise it with --max-memory if this machine really has the room"
        )
