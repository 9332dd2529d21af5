"""Hypothesis profiles: ``ci`` is derandomized with an explicit deadline; ``dev`` (the default) explores.

``ci`` is selected when ``HYPOTHESIS_PROFILE=ci`` or the ``CI`` environment variable is set (GitHub Actions and
most CI services set ``CI=true``); ``HYPOTHESIS_PROFILE=dev`` forces ``dev`` even there. Tests that pass
``@settings(deadline=None, max_examples=...)`` keep those values; everything else comes from the profile.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

# Derandomized: the same examples on every run, so a CI failure reproduces and a pass is not luck of the seed.
# The deadline is explicit and generous (2 s per example on 2 shared cores); print_blob prints the
# @reproduce_failure line for any failure.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=timedelta(seconds=2),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# Random exploration while developing: each run draws new examples (failures are saved in .hypothesis/).
settings.register_profile("dev", deadline=timedelta(seconds=2), print_blob=True)


def _profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI") else "dev"


settings.load_profile(_profile())
