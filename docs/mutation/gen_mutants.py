"""Generate mutmut's ``mutants/`` tree without running anything (issue 18: resuming the whole-core decisions).

``mutmut run`` generates the tree and then runs the clean suite, the stats run and every mutant; to decide mutants
with ``decide.py`` only the tree is needed. Run in the project root; the names are read from ``mutants/**/*.meta``.
Mutant names depend only on each function's source, so a tree generated from the same commit gives the same names.
"""

from __future__ import annotations

import os

from mutmut.__main__ import create_mutants, set_mutant_under_test
from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths

if __name__ == "__main__":
    set_mutant_under_test("mutant_generation")
    os.makedirs("mutants", exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(2)
