"""Stage ``compiled``: tracr compile → exact ``HookedTransformer`` with a labelled residual basis.

>>> from workbench.compiled import compile_lib
>>> compile_lib("reverse").run(list("abc"))
['c', 'b', 'a']
"""

from __future__ import annotations

from workbench.compiled.bridge import (
    COMPILER_BOS,
    COMPILER_PAD,
    CompiledModel,
    ResidualDim,
    compile_program,
    residual_hook_names,
)
from workbench.compiled.cache import cache_dir, load_or_compile
from workbench.errors import WorkbenchError
from workbench.compiled.lib_programs import LIB_PROGRAMS, LibProgram, get_lib_program


def compile_lib(name: str, causal: bool = False, max_seq_len: int | None = None, use_cache: bool = True) -> CompiledModel:
    """Compile the ``tracr.compiler.lib`` program ``name`` with its registered vocab (cached on disk)."""
    entry = get_lib_program(name)
    seq_len = entry.max_seq_len if max_seq_len is None else max_seq_len
    if seq_len < 1:
        raise WorkbenchError(f"max_seq_len must be at least 1 (got {seq_len}); {entry.name} is registered with "
                             f"{entry.max_seq_len}")
    spec = {"lib_program": entry.name, "vocab": sorted(map(repr, entry.vocab)), "max_seq_len": seq_len,
            "causal": causal, "bos": COMPILER_BOS, "pad": COMPILER_PAD}
    return load_or_compile(
        spec, lambda: compile_program(entry.build(seq_len), set(entry.vocab), seq_len, causal=causal), use_cache
    )


__all__ = [
    "COMPILER_BOS", "COMPILER_PAD", "CompiledModel", "LIB_PROGRAMS", "LibProgram", "ResidualDim", "cache_dir",
    "compile_lib", "compile_program", "get_lib_program", "load_or_compile", "residual_hook_names",
]
