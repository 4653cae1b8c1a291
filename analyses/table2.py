"""Table 2: out-of-distribution suites — TI vs FT+KL (and the unedited model, the compiled program).

    python analyses/table2.py [--model smollm2-135m] [--runs runs/presets/smollm2] [--run ti:dyck=RUN ...] [--n 100]
"""

from paper import TABLE2
from tables import arguments, collect, find, percent, unfinished_notes, write

import pandas as pd

if __name__ == "__main__":
    args = arguments(__doc__)
    records = collect(args, suites=True, benchmarks=False)
    rows = []
    for (task, suite), (paper_ti, paper_ft) in TABLE2.items():
        def accuracy(method, column="model_accuracy"):
            record = find(records, task, method)
            if record is None:
                return "not run"
            table = record["table"]
            value = percent(table[table.set == suite].iloc[0][column])
            return value if record["finished"] else value + " (unfinished run)"

        base = find(records, task, "none")["table"]
        supported = bool(base[base.set == suite].iloc[0].compiled_supports)
        rows.append({"task": task, "suite": suite, "compiled supports": "yes" if supported else "no",
                     "compiled program %": accuracy("none", "compiled_accuracy"), "no edit %": accuracy("none"),
                     "TI %": accuracy("ti"), "FT+KL %": accuracy("ft"), "paper TI %": paper_ti,
                     "paper FT+KL %": paper_ft})
    write(pd.DataFrame(rows), "table2", "Table 2 — out-of-distribution accuracy",
          [f"model: {records[0]['model']}; {args.n} prompts per suite (fewer where the suite has fewer); "
           "strict greedy exact match (the answer, then a token that ends it)",
           "paper columns: GPT-2-large, 80k steps (seed 000 Table 2)",
           "'compiled supports' = the compiled program is expected to solve the suite (appendix D)"]
          + unfinished_notes(records))
