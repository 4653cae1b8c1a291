"""Table 3: accuracy, perplexity and unrelated tasks (SST-2, MRPC 2-shot; LAMBADA) per method.

    python analyses/table3.py [--model smollm2-135m] [--runs runs/presets/smollm2] [--run ti:dyck=RUN ...]

SST-2, MRPC and LAMBADA need the Hugging Face hub (or local files through `workbench eval`);
offline their cells say 'unavailable: <reason>', never a made-up number.
"""

from paper import COLUMNS3, TABLE3
from tables import arguments, collect, find, method_name, percent, unfinished_notes, write

import pandas as pd

if __name__ == "__main__":
    args = arguments(__doc__)
    records = collect(args, suites=False, benchmarks=True)
    rows = []
    for task in ("dyck", "sum", "count"):
        for method in ("none", "ft", "ti"):
            r = find(records, task, method)
            paper = dict(zip(COLUMNS3, TABLE3[task][method]))
            row = {"task": task, "method": method_name(method)}
            if r:
                row.update({"model": r["model"], "steps": r["steps"],
                            "accuracy %": percent(r["table"].iloc[0].model_accuracy),
                            "perplexity": f"{r['perplexity']:.1f}",
                            **{b: percent(r[b]) for b in ("sst2", "mrpc", "lambada")}})
            else:
                row.update({"model": "not run", "steps": "", "accuracy %": "not run", "perplexity": "not run",
                            **{b: "" for b in ("sst2", "mrpc", "lambada")}})
            row.update({f"paper {k}": v for k, v in paper.items()})
            rows.append(row)
    write(pd.DataFrame(rows), "table3", "Table 3 — task accuracy, perplexity and unrelated tasks",
          [f"perplexity corpus: {records[0]['corpus']}",
           "paper columns: GPT-2-large (seed 000 Table 3); SST-2/MRPC 2-shot by label-token logits, LAMBADA "
           "last-word greedy accuracy"] + unfinished_notes(records))
