from workbench.cli import main


def test_compile_prints_output_and_writes_figure(tmp_path, capsys):
    figure = tmp_path / "reverse.html"
    assert main(["compile", "--program", "reverse", "--input", "abcab", "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    output_line = next(line for line in out.splitlines() if line.startswith("output"))
    assert output_line.split()[1:] == list("bacba")
    assert "4 blocks" in out and figure.exists()


def test_numeric_input_and_list(capsys):
    assert main(["compile", "--list"]) == 0
    assert "frac_prevs" in capsys.readouterr().out


def test_bad_input_is_one_clear_error(capsys, tmp_path):
    assert main(["compile", "--program", "reverse", "--input", "abz", "--figure", str(tmp_path / "f.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: token 'z' is not in the compiled vocab ['a', 'b', 'c']")
    assert main(["compile", "--program", "nope", "--input", "a"]) == 2
    assert "available: length, reverse" in capsys.readouterr().err
    assert main(["compile", "--program", "reverse", "--input", "abcabcabc", "--figure", str(tmp_path / "f.html")]) == 2
    assert "9 tokens" in capsys.readouterr().err
