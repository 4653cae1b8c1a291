"""`workbench zoo generate|show`: a real tiny zoo through the command line, and its bad inputs."""

import contextlib
import io

import pytest

from workbench.cli import main

SMALL = ["--workers", "0", "--shard-size", "6", "--ops", "8", "--min-length", "3", "--vocab-max", "5",
         "--max-seq-len", "6", "--n-inputs", "8", "--seed", "3", "--timeout", "60"]


def _run(argv):
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A 5-program zoo made once through the CLI, and what ``generate`` printed (any test may run first)."""
    folder = tmp_path_factory.mktemp("cli") / "zoo"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(["zoo", "generate", "--n", "5", "--out", str(folder), *SMALL]) == 0
    return folder, printed.getvalue()


@pytest.fixture
def zoo_dir(generated):
    return generated[0]


def test_generate_then_show(generated, capsys):
    zoo_dir, out = generated
    assert "programs  5 (" in out and "attempted" in out and "programs/s per worker" in out
    assert main(["zoo", "show", str(zoo_dir), "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert "lengths" in out and "ops " in out and out.count("\nprogram ") == 2
    assert "START NA NA NA NA" in out and "END NA NA NA NA" in out and " = " in out
    html = (zoo_dir / "zoo.html").read_text()
    assert "plotly" in html and "program length" in html


def test_generate_again_resumes_and_adds_nothing(zoo_dir, capsys):
    shards = sorted(p.name for p in (zoo_dir / "shards").iterdir())
    assert main(["zoo", "generate", "--n", "5", "--out", str(zoo_dir), *SMALL]) == 0
    assert sorted(p.name for p in (zoo_dir / "shards").iterdir()) == shards
    assert "programs  5 (" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragments", [
    (["zoo", "generate", "--n", "0", "--out", "TMP/z"], ["--n must be at least 1 (got 0)"]),
    (["zoo", "generate", "--n", "3", "--out", "TMP/z", "--timeout", "nan"], ["--timeout must be a positive"]),
    (["zoo", "generate", "--n", "3", "--out", "TMP/z", "--numeric-share", "2"], ["--numeric-share must be in [0, 1]"]),
    (["zoo", "generate", "--n", "3", "--out", "TMP/z", "--min-length", "20"], ["--min-length 20 is more than --ops"]),
    (["zoo", "generate", "--n", "3", "--out", "TMP/z", "--workers", "-1"], ["--workers must be at least 0"]),
    (["zoo", "generate", "--n", "3", "--out", "TMP/z", "--workers", "0", "--address", "x:1"], ["give one of them"]),
    (["zoo", "generate", "--n", "3", "--out", "TMP/file.txt", "--workers", "0"], ["is a file"]),
    (["zoo", "generate", "--n", "3"], ["--out"]),
    (["zoo", "show", "TMP/nothing"], ["is not a zoo", "workbench zoo generate"]),
    (["zoo"], ["zoo"]),
])
def test_bad_input_is_one_line_and_exit_2(argv, fragments, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    argv = [a.replace("TMP", str(tmp_path)) for a in argv]
    assert _run(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert all(f in err[0] for f in fragments), err[0]
    assert not (tmp_path / "z").exists()


def test_other_settings_on_an_existing_zoo_are_refused(zoo_dir, capsys):
    argv = ["zoo", "generate", "--n", "5", "--out", str(zoo_dir), *SMALL[:-4], "--seed", "4", "--timeout", "60"]
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert "other settings (seed)" in err and len(err.strip().splitlines()) == 1
