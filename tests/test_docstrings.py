"""Every docstring example in instances/, reductions/ and finegrained/ runs, one test per module.

Modules are discovered, not listed, so a new module is covered as soon as it exists. A module that defines a
public function or class of its own must carry examples, unless it is in ``NO_EXAMPLES`` with the reason; a
module that lost all its examples therefore fails instead of passing with zero. The total is held above 100.
"""

from __future__ import annotations

import doctest
import functools
import importlib
import inspect
import io
import os
import pkgutil

import pytest

PACKAGES = ("instances", "reductions", "finegrained")
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
MIN_TOTAL = 100

#: Modules with public definitions but no examples, and why. Everything else with a public API needs examples.
NO_EXAMPLES = {
    "instances.solutions": "plain result containers; their use is shown in the reductions' examples",
    "reductions.base": "the abstract Reduction and Chain; every concrete reduction module has examples",
    "finegrained.attention.lev_torch": "needs the optional torch extra; tested by its own torch tests",
}
#: Command-line front ends and benchmark drivers: they print or time, so examples would be output checks.
NO_EXAMPLES_PACKAGES = ("finegrained.cli", "finegrained.commands", "finegrained.bench")


def _module_names() -> list[str]:
    names = []
    for pkg in PACKAGES:
        package = importlib.import_module(pkg)
        names.append(pkg)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, pkg + ".")]
    # `python -m` entry points run the CLI when imported; they hold no library code.
    return sorted(n for n in names if n.rsplit(".", 1)[-1] != "__main__")


MODULES = _module_names()


def _public_definitions(module) -> list[str]:
    """Public functions and classes defined in the module itself (not re-exported)."""
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and getattr(obj, "__module__", None) == module.__name__]


def _needs_examples(name: str, module) -> bool:
    if name in NO_EXAMPLES or any(name == p or name.startswith(p + ".") for p in NO_EXAMPLES_PACKAGES):
        return False
    return bool(_public_definitions(module))


@functools.cache
def _run(name: str) -> tuple[int, int, str]:
    """(examples, failures, report) of one module's docstrings, run in a scratch directory."""
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, name)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    out = io.StringIO()
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    return sum(len(t.examples) for t in tests), result.failed, out.getvalue()


@pytest.fixture
def scratch(tmp_path):
    """Run examples in an empty directory, so one that writes a file cannot litter the checkout."""
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield
    finally:
        os.chdir(here)


@pytest.mark.parametrize("name", MODULES)
def test_module_docstring_examples(name, scratch):
    examples, failed, report = _run(name)
    assert failed == 0, f"{failed} of {examples} docstring examples of {name} fail:\n{report}"
    if _needs_examples(name, importlib.import_module(name)):
        assert examples > 0, (f"{name} defines {_public_definitions(importlib.import_module(name))} but has no "
                              "docstring examples; add some, or list it in NO_EXAMPLES with the reason")


def test_exemptions_are_current():
    """An exemption for a module that no longer exists is stale."""
    for name in NO_EXAMPLES:
        assert name in MODULES, f"NO_EXAMPLES lists {name}, which no longer exists"


def test_there_are_more_than_100_examples(scratch):
    total = sum(_run(name)[0] for name in MODULES)
    assert total > MIN_TOTAL, f"only {total} docstring examples"
