"""Every notebook runs top to bottom on the small models, and its key outputs are what it claims."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
FIGURE = "application/vnd.plotly.v1+json"


def _outputs(book) -> list[dict]:
    return [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]


def _text(book) -> str:
    """Printed text and the plain-text form of every result, in order."""
    parts = []
    for output in _outputs(book):
        parts.append(output.get("text", "") if output.output_type == "stream" else
                     output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _figures(book) -> int:
    return sum(FIGURE in output.get("data", {}) for output in _outputs(book))


def _table_row(text: str, name: str) -> list[str]:
    """The cells of the first printed table row whose label starts with ``name``."""
    match = re.search(rf"^{re.escape(name)}\S*[ \t]+(.+)$", text, re.MULTILINE)
    assert match, f"no row {name!r} in:\n{text}"
    return match.group(1).split()


def _check_compile(text: str, book) -> None:
    assert re.search(r"^\d+ blocks, residual width \d+$", text, re.MULTILINE), text
    assert "['a', 'c', 'b', 'a']" in text  # reverse("abca")
    assert "'indices:0', 'indices:1'" in text  # the labelled basis
    assert _figures(book) == 1
    # the compiled sum program on "211 + 123 = 3" (334): the next answer digit after "=" and after "3"
    assert _table_row(text, "next_token")[-2:] == ["3", "3"], text
    assert _table_row(text, "tokens") == ["2", "1", "1", "+", "1", "2", "3", "=", "3"]


def _check_inject(text: str, book) -> None:
    assert "[0, 1, 2, 3]" in text  # the paper layer map on 4 blocks
    first, last = map(float, re.search(r"alignment loss ([\d.]+) -> ([\d.]+)", text).groups())
    assert last < 0.5 * first, (first, last)  # 20 steps: the alignment loss falls


def _check_decode(text: str, book) -> None:
    for variable in ("count_x", "answer_tokens_seen", "indices", "tokens"):
        _table_row(text, variable)  # decoded and in the agreement table
    assert "layer 3 (block 3)" in text
    agreements = [float(v) for v in re.findall(r"(?<![\w.])(0\.\d+|1\.0+)(?![\w.])", text.split("layer 0 (block 0)")[-1])]
    assert agreements and all(0 <= a <= 1 for a in agreements)
    assert max(agreements) > 0.9  # some variables already decode through the map
    assert _figures(book) == 1  # the ablation figure


def _method_row(text: str, method: str) -> list[float]:
    """edge AUC, node AUC and CPR (faithfulness) of ``method`` in the one-draw table (rows ``i  method  ...``)."""
    match = re.search(rf"^\d+\s+{re.escape(method)}\s+(\S+)\s+(\S+)\s+(\S+)$", text, re.MULTILINE)
    assert match, f"no row for {method!r} in:\n{text}"
    return [float(v) for v in match.groups()]


def _check_circuits(text: str, book) -> None:
    assert re.search(r"head-level graph: \d+ nodes \(4 heads, 4 MLPs\), \d+ edges", text), text
    assert "'a3.h0->output'" in text  # the truth: reverse's last head writes the output
    for component in ("a0.h0", "m0", "m1", "m2", "a3.h0"):
        assert re.search(rf"^\d+\s+{re.escape(component)}\s", text, re.MULTILINE), component
    acdc, random = _method_row(text, "acdc"), _method_row(text, "random")
    assert acdc[0] == 1.0  # tier 1, zero ablation: ACDC recovers reverse's circuit edge for edge
    assert random[0] < 0.8 and acdc[2] > random[2]
    assert _figures(book) >= 1  # the ROC curves
    assert "(tier 2)" in text and re.search(r"^eap-ig\s+2\s", text, re.MULTILINE), text


CHECKS = {"01_compile_and_inspect": _check_compile, "02_inject_small": _check_inject,
          "03_decode_and_ablate": _check_decode, "04_circuits": _check_circuits}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert not errors
    assert path.stem in CHECKS, f"add the key outputs of {path.name} to CHECKS"
    CHECKS[path.stem](_text(book), book)
