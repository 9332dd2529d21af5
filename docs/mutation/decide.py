"""Decide mutmut's mutants in one process with a chosen subset of the tests (issue 18: the whole-core run).

mutmut runs every test that executes a mutated function; the core's functions are executed by nearly every test,
so a surviving mutant costs the whole selection (about five minutes) and the whole core would need tens of CPU
hours on two cores. This script decides mutants with the tests one names instead (a module's own unit tests): a
mutant killed by a subset of the suite is killed by the suite, so its kills are kills; its survivors are triaged
(killed by a new test, or argued equivalent) in this folder's lists.

Run it inside mutmut's generated tree (``mutants/``, made by ``gen_mutants.py`` beside this file), with the mutant
names on stdin::

    cd mutants && HYPOTHESIS_PROFILE=ci python ../docs/mutation/decide.py OUT.txt tests/x/test_a.py ... < names

1. Baseline: every collected test runs once on the original code (``MUTANT_UNDER_TEST=stats``: the trampolines
   record which mutated functions it executes), timed; all must pass. A function executed at import time counts as
   executed by every test.
2. Per mutant: the tests that execute its function, fastest first (the test that killed the previous mutant of the
   same function first of all); every fixture torn down after each test (``nextitem=None``) and every functools
   cache of the core cleared before each, so nothing computed under one mutant reaches the next; stop at the first
   failure. A wall limit of 60 s plus twice the tests' baseline time gives ``timeout``, reported apart from kills.
   Hypothesis runs without its shrink phase (a failing example kills; finding the smallest one is wasted time).

Writes ``NAME killed|timeout|survived [first failing test] ntests=N T s`` lines to OUT.txt (appending; a restart
skips the names already there).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.getcwd())  # the mutated package in mutants/, not an installed one
import mutmut.mutation.trampoline as tramp  # noqa: E402
import pytest  # noqa: E402
from _pytest.runner import runtestprotocol  # noqa: E402

HITS: set[str] = set()
tramp.record_trampoline_hit = lambda name, caller=None: HITS.add(name)


class MutantTimeout(BaseException):
    """Raised by the wall-clock alarm; a BaseException so that no test's ``except Exception`` swallows it."""


def clear_caches() -> None:
    """Clear every functools cache of the core (module functions, class attributes, cached builders)."""
    for name, mod in list(sys.modules.items()):
        if mod is None or not name.startswith(("finegrained", "instances", "reductions")):
            continue
        for value in list(vars(mod).values()):
            objs = [value, getattr(value, "_build", None)]
            if isinstance(value, type):
                for attr in vars(value).values():
                    objs += [attr, getattr(attr, "fget", None), getattr(attr, "__func__", None)]
            for obj in objs:
                if obj is not None and hasattr(obj, "cache_clear"):
                    try:
                        obj.cache_clear()
                    except TypeError:
                        pass


def run_item(item) -> bool:
    clear_caches()
    return not any(r.failed for r in runtestprotocol(item, nextitem=None, log=False))


def _alarm(signum, frame):
    raise MutantTimeout("over the wall limit")


class Decider:
    """A pytest plugin that replaces the run loop: baseline first, then every mutant in turn."""

    def __init__(self, out: str, names: list[str]):
        self.out, self.names = out, names

    def pytest_collection_finish(self, session):
        self.import_hits = set(HITS)
        # no shrinking: a kill needs one failing example, not the smallest one (kills by one property took 85-100 s
        # each under load, shrinking included); the profile's other settings, derandomized examples too, are kept
        from hypothesis import Phase, settings

        settings.register_profile("decide", settings(settings.default, phases=[Phase.explicit, Phase.reuse,
                                                                                 Phase.generate]))
        settings.load_profile("decide")

    def pytest_runtestloop(self, session):
        import finegrained

        if not finegrained.__file__.startswith(os.getcwd()):
            raise SystemExit(f"run this inside mutmut's mutants/ tree (imported {finegrained.__file__})")
        items, hits, dur, bad = session.items, {}, {}, []
        for it in items:
            HITS.clear()
            t0 = time.perf_counter()
            if not run_item(it):
                bad.append(it.nodeid)
            dur[it.nodeid], hits[it.nodeid] = time.perf_counter() - t0, set(HITS)
        os.environ["MUTANT_UNDER_TEST"] = ""
        with open(self.out + ".baseline.json", "w") as fh:
            json.dump({"dur": dur, "hits": {k: sorted(v) for k, v in hits.items()}}, fh)
        if bad:
            raise SystemExit(f"tests fail on the original code: {bad}")
        items = sorted(items, key=lambda it: dur[it.nodeid])

        def chosen_for(name: str):
            func = name.partition("__mutmut_")[0]
            return items if func in self.import_hits else [it for it in items if func in hits[it.nodeid]]

        last_killer: dict[str, str] = {}
        signal.signal(signal.SIGALRM, _alarm)
        self.names.sort(key=lambda n: sum(dur[it.nodeid] for it in chosen_for(n)))
        with open(self.out, "a") as out:
            for name in self.names:
                func = name.partition("__mutmut_")[0]
                chosen = chosen_for(name)
                first = last_killer.get(func)
                if first is not None:
                    chosen = [it for it in chosen if it.nodeid == first] + [it for it in chosen if it.nodeid != first]
                verdict, by = "survived", ""
                os.environ["MUTANT_UNDER_TEST"] = name
                t0 = time.perf_counter()
                signal.alarm(int(60 + 2 * sum(dur[it.nodeid] for it in chosen)))
                current = None
                try:
                    for current in chosen:
                        if not run_item(current):
                            verdict, by = "killed", current.nodeid
                            last_killer[func] = current.nodeid
                            break
                except MutantTimeout:
                    verdict, by = "timeout", current.nodeid if current is not None else ""
                finally:
                    signal.alarm(0)
                    os.environ["MUTANT_UNDER_TEST"] = ""
                out.write(f"{name} {verdict} {by} ntests={len(chosen)} {time.perf_counter() - t0:.1f}s\n")
                out.flush()
        return True


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit("usage: decide.py OUT.txt TESTPATH... < mutant names")
    out, paths = argv[0], argv[1:]
    names = [ln.strip() for ln in sys.stdin if ln.strip()]
    if os.path.exists(out):
        done = {ln.split()[0] for ln in open(out) if ln.strip()}
        names = [n for n in names if n not in done]
    os.environ["MUTANT_UNDER_TEST"] = "stats"
    return int(pytest.main(["-p", "no:cacheprovider", "-p", "no:warnings", "-q", *paths],
                           plugins=[Decider(out, names)]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
