"""The one exception type the workbench raises for bad input."""


class WorkbenchError(ValueError):
    """Bad input or state, with a message that names the problem and the fix."""


def check_settings(kind: str, settings, checks) -> None:
    """Raise for the first ``(name, ok, rule)`` of ``checks`` that is not ok, naming the setting's value.

    >>> check_settings("training", type("S", (), {"steps": 0})(), [("steps", False, "at least 1")])
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: training setting steps=0 must be at least 1
    """
    for name, ok, rule in checks:
        if not ok:
            raise WorkbenchError(f"{kind} setting {name}={getattr(settings, name)!r} must be {rule}")
