"""Progress bars on stderr (tqdm), shown only when stderr is a terminal and the output is not JSON."""

from __future__ import annotations

import sys
from collections.abc import Callable


def enabled(as_json: bool = False) -> bool:
    """Whether a progress bar may be drawn: stderr is a terminal and the output is not machine-readable."""
    if as_json:
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Bar:
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr, created on the first call."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.desc, file=sys.stderr, leave=False, unit="step",
                             dynamic_ncols=True, mininterval=0)  # steps are coarse: show every one
        self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_for(desc: str, as_json: bool = False) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A ``(progress, close)`` pair: a bar when :func:`enabled`, else ``(None, no-op)``."""
    if not enabled(as_json):
        return None, lambda: None
    bar = Bar(desc)
    return bar, bar.close
