"""docs/tutorial.ipynb executes from top to bottom without error, in a kernel of this very interpreter (issue 15).

The kernel is declared in a temporary kernelspec directory put first on ``JUPYTER_PATH``, so the test runs on a
fresh machine (no ``ipykernel install`` needed) and never picks up a stale user kernel pointing at another
Python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "tutorial.ipynb"
KERNEL = "finegrained-test"


@pytest.fixture()
def kernel_name(tmp_path, monkeypatch) -> str:
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"finegrained tests ({sys.executable})", "language": "python",
        "env": {"MPLBACKEND": "Agg"},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def test_notebook_executes(kernel_name, tmp_path):
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    assert nb.cells and sum(c.cell_type == "code" for c in nb.cells) >= 6
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 5  # the five stage figures
    # the rich reprs reached the notebook: ChainResult as HTML, the validation report and walkthrough as Markdown
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("SAT" in h and "<table>" in h for h in html)
    markdown = "\n".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "Validation of tiny4" in markdown and "# Walkthrough of the SETH chain" in markdown
    assert "| E2 |" in markdown and "1 of 4" in markdown
