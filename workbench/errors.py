"""The one exception type the workbench raises for bad input."""


class WorkbenchError(ValueError):
    """Bad input or state, with a message that names the problem and the fix."""
