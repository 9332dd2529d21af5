"""Generate mutmut's ``mutants/`` tree without running anything (issue 18: resuming the whole-core decisions).

``mutmut run`` generates the tree and then runs the clean suite, the stats run and every mutant; to decide mutants
with ``decide.py`` only the tree is needed. Run in the project root; the names are the keys of ``exit_code_by_key``
in ``mutants/**/*.meta``. Names are numbered within each function (``x_func__mutmut_N``): a name carries over to
another commit only where the mutant's text is the same, which is how docs/mutation/head/carried_partial.json was
checked.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # mutmut's own message for a wrong directory is a traceback from its import
    if not os.path.isfile("pyproject.toml") or "[tool.mutmut]" not in open("pyproject.toml").read():
        sys.exit("gen_mutants.py: run it in the project root (no pyproject.toml with [tool.mutmut] here)")
    # mutmut keeps files that already exist in mutants/, so a tree left from another commit would be partly reused
    if os.path.exists("mutants"):
        sys.exit("gen_mutants.py: mutants/ exists; delete it first (it may hold another commit's mutants)")
    from mutmut.__main__ import create_mutants, set_mutant_under_test
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths

    set_mutant_under_test("mutant_generation")
    os.makedirs("mutants")
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(2)
