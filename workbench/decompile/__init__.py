"""Stage ``decompile`` (seed 003): random RASP programs, canonical program and weight encodings, the zoo.

Programs (:mod:`.program`) are drawn by :mod:`.generator`, written as 5-token lines by
:mod:`.encoding`, compiled and checked against RASP evaluation by :mod:`.faithful`, turned into
weight tokens by :mod:`.weights`, and generated at scale on Ray by :mod:`.zoo`. The meta-model
(:mod:`.metamodel`) reads weight tokens and writes the program grid; :mod:`.train` trains it
on a zoo, :mod:`.metrics` and :mod:`.evaluate` score it (imported on their own: they need torch,
which the zoo's compiling processes do not load).
"""

from workbench.decompile.encoding import decode, encode, program_hash
from workbench.decompile.faithful import CompileWorker, compile_and_check
from workbench.decompile.generator import GeneratorConfig, generate
from workbench.decompile.program import Line, Program
from workbench.decompile.weights import encode_weights, token_width
from workbench.decompile.zoo import ZooConfig, generate_zoo, load_zoo

__all__ = ["CompileWorker", "GeneratorConfig", "Line", "Program", "ZooConfig", "compile_and_check", "decode", "encode",
           "encode_weights", "generate", "generate_zoo", "load_zoo", "program_hash", "token_width"]
