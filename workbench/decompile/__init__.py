"""Stage ``decompile`` (seed 003): random RASP programs, canonical program and weight encodings, the zoo.

Programs (:mod:`.program`) are drawn by :mod:`.generator`, written as 5-token lines by
:mod:`.encoding`, compiled and checked against RASP evaluation by :mod:`.faithful`, turned into
weight tokens by :mod:`.weights`, and generated at scale on Ray by :mod:`.zoo`.
"""
