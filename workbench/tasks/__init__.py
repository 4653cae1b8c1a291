"""Stage ``tasks``: the three injected algorithms as program + prompt format + generators + reference.

>>> task = get_task("sum")
>>> task.make(211, 123).text
'211 + 123 = 334'
"""

from __future__ import annotations

from workbench.errors import WorkbenchError
from workbench.tasks.base import Example, Suite, Task, pieces
from workbench.tasks.count import CountX
from workbench.tasks.dyck import ShuffleDyck
from workbench.tasks.sum import IntegerSum

TASKS: dict[str, Task] = {task.name: task for task in (ShuffleDyck(), CountX(), IntegerSum(),
                                                        ShuffleDyck(algorithm="paper"))}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise WorkbenchError(f"unknown task {name!r}; available: {', '.join(TASKS)}")
    return TASKS[name]


__all__ = ["Example", "Suite", "TASKS", "Task", "get_task", "pieces"]
