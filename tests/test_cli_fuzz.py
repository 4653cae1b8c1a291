"""Property-based fuzzing of the command line (Hypothesis): any argument list either parses / runs,
or exits with code 2 and one line on stderr, never a traceback.

``test_cli_errors.py`` holds the known bad inputs; here Hypothesis draws argument lists from each
sub-command's own option names mixed with hostile values (empty, blank, negative, NaN, control
characters, newlines, null bytes, comma lists). ``main`` runs for real up to the point where a
command would start its work (compiling, training, loading a run, ...): those entry points are
replaced by a stub that stops there, so each example takes milliseconds and touches no file.
"""

import contextlib
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.cli import build_parser, main

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def _options(parser) -> set:
    """A parser's option strings, those of its own sub-commands included (``zoo generate|show``)."""
    found = {s for a in parser._actions for s in a.option_strings} - {"-h", "--help"}
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            found |= set().union(*(_options(sub) for sub in action.choices.values()))
    return found


SUBCOMMANDS = _subparsers()
OPTIONS = {name: sorted(_options(sub)) for name, sub in SUBCOMMANDS.items()}
CHOICES = sorted({str(c) for sub in SUBCOMMANDS.values() for a in sub._actions for c in (a.choices or ())})

VALUES = st.one_of(
    st.sampled_from(["", " ", "-", "--", "0", "-1", "1", "2", "nan", "inf", "-inf", "1e309", "1e-3", "x", "0,1,x",
                     "8,,16", "1,2", "0,-5", ";", "a\nb", "\x00", "abc", "reverse", "count", "dyck", "sum", "tiny",
                     "tiny-gpt2", "no-such-model", "/nonexistent/path", "()", "3 1 2"]),
    st.sampled_from(CHOICES),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


def _argv(command):
    return st.lists(st.one_of(st.sampled_from(OPTIONS[command]), VALUES), max_size=8).map(lambda rest: [command,
                                                                                                        *rest])


ANY_ARGV = st.one_of(
    st.lists(st.one_of(st.sampled_from([*SUBCOMMANDS, "-v", "--verbose"]), VALUES), max_size=6),
    st.sampled_from(sorted(SUBCOMMANDS)).flatmap(_argv),
)


class _Reached(Exception):
    """A command got past its argument checks to the start of its real work."""


def _stop(*args, **kwargs):
    raise _Reached


# Where each sub-command starts working: compiling, training, loading a run, sweeping, ...
WORK = ["workbench.compiled.compile_lib", "workbench.tasks.base.Task.compile", "workbench.inject.trainer.train",
        "workbench.evaluate.runs.evaluate_run", "workbench.evaluate.runs.load_trained_map",
        "workbench.compress.sweep", "workbench.circuits.benchmark.compiled_target",
        "workbench.circuits.benchmark.run_target", "workbench.demo.run_demo", "workbench.decompile.zoo.generate_zoo",
        "workbench.decompile.train.train", "workbench.decompile.evaluate.evaluate_run",
        "workbench.decompile.evaluate.decompile_program", "workbench.report.run_report",
        "workbench.report.compare_report", "workbench.report.compiled_report"]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("WARNING")]


def _check_exit(code, argv, out: str, err: str, reached: bool = False) -> None:
    assert "Traceback" not in out + err, (argv, err)
    if reached or code == 0:
        return
    assert code == 2, (argv, code, err)
    lines = _lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)


@FUZZ
@given(ANY_ARGV)
def test_the_parser_accepts_or_refuses_in_one_line(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code
    if code == 0 and any(a.startswith(("-h", "--h")) for a in argv):
        return  # the help text (an abbreviation of --help included)
    _check_exit(code, argv, out.getvalue(), err.getvalue())


@FUZZ
@given(ANY_ARGV)
def test_main_refuses_bad_arguments_in_one_line_before_any_work(argv):
    with pytest.MonkeyPatch.context() as patch:
        for target in WORK:
            patch.setattr(target, _stop)
        out, err = io.StringIO(), io.StringIO()
        reached = False
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as stop:
                code = stop.code
            except _Reached:
                code, reached = None, True
    _check_exit(code, argv, out.getvalue(), err.getvalue(), reached)


@FUZZ
@given(st.sampled_from([["tasks", "list"], ["tasks", "list", "count"], ["compile", "--list"]]),
       st.lists(st.one_of(VALUES, st.sampled_from(["--n", "--seed", "--program", "--input", "--causal"])),
                max_size=4))
def test_the_listing_commands_run_or_refuse_in_one_line(command, extra):
    """The commands that do their (fast) work for real: listing the tasks and the lib programs."""
    argv = [*command, *extra]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    _check_exit(code, argv, out.getvalue(), err.getvalue())
    if code == 0 and not any(a.startswith(("-h", "--h")) for a in argv):
        assert ("count" in out.getvalue()) if argv[0] == "tasks" else ("reverse" in out.getvalue()), out.getvalue()
