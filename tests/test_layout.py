"""The folders are the pipeline: a stage imports only the stages before it (DESIGN.md, "Layout").

Applications of several stages (the CLI, the demo) sit beside the stages, at the package's top.
"""

import ast
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent
UTILITIES = {"curves", "distributed", "errors", "fsutil", "padding", "plots", "tracr_craft"}  # imported by any stage
# Dependency order: compiled programs, the tasks built on them, token and layer alignment, models, ...
STAGES = ["compiled", "tasks", "align", "models", "inject", "evaluate", "decode", "ablate", "compress", "circuits",
          "decompile"]
APPLICATIONS = {"cli", "demo", "report"}  # report: one page drawn from every stage's outputs


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported workbench module, line) for every import in the file, lazy ones in functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "workbench":
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "workbench"]
    return found


def test_every_stage_imports_only_earlier_stages():
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        stage = parts[0]
        if stage in APPLICATIONS or stage == "__init__":
            continue
        assert stage in STAGES or stage in UTILITIES, f"{path}: place the new stage {stage!r} in STAGES"
        for module, line in _imports(path):
            target = module.split(".")[1] if "." in module else "__init__"
            if target in (stage, "__init__") or target in UTILITIES:
                continue
            if stage in UTILITIES or target in APPLICATIONS or STAGES.index(target) > STAGES.index(stage):
                backwards.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({stage}) imports {module}")
    assert not backwards, "\n".join(backwards)


def test_the_layer_map_lives_in_align_and_the_demo_beside_the_cli():
    import workbench.align
    import workbench.inject.hooks

    for name in ("layer_map", "model_hook", "compiled_hook"):
        assert getattr(workbench.inject.hooks, name) is getattr(workbench.align, name)  # old imports still work
    assert not (PACKAGE / "inject" / "demo.py").exists() and (PACKAGE / "demo.py").exists()
    readers = [PACKAGE / "decode" / "__init__.py", PACKAGE / "decode" / "views.py", PACKAGE / "ablate" / "__init__.py",
               PACKAGE / "evaluate" / "runs.py", *sorted((PACKAGE / "circuits").glob("*.py"))]
    for path in readers:
        source = path.read_text(encoding="utf-8")
        for line in source.splitlines():
            if "workbench.inject.hooks import" in line:
                assert not any(n in line for n in ("layer_map", "model_hook", "compiled_hook")), (path, line)
