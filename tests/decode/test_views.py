from workbench.cli import main


def test_decode_command_for_a_compiled_task(tmp_path, capsys):
    assert main(["decode", "--compiled", "sum", "--prompt", "211 + 123 = 3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    next_token = next(line for line in out.splitlines() if line.startswith("next_token"))
    assert next_token.split()[-2:] == ["3", "3"]  # at '=' and at the first answer digit: 3, then 3 (of 334)
    for name in ("residual.html", "mapped_residual.html", "decoded_variables.html", "decoded_variables.csv"):
        assert (tmp_path / name).exists()


def test_decode_needs_exactly_one_source(capsys):
    assert main(["decode", "--prompt", "1 + 1 ="]) == 2
    assert "RUN_DIR or --compiled" in capsys.readouterr().err
