"""Table 1: task accuracy and Tiny-Shakespeare perplexity — no edit, FT+KL, TI — next to the paper.

    python analyses/table1.py [--model smollm2-135m] [--runs runs/presets/smollm2] [--run ti:dyck=RUN ...] [--n 100]
"""

from paper import TABLE3
from tables import arguments, collect, find, method_name, percent, unfinished_notes, write

import pandas as pd

if __name__ == "__main__":
    args = arguments(__doc__)
    records = collect(args, suites=False, benchmarks=False)
    rows = []
    for task in ("dyck", "sum", "count"):
        for method in ("none", "ft", "ti"):
            r = find(records, task, method)
            paper = TABLE3[task][method]
            if r:
                test = r["table"].iloc[0]
                rows.append({"task": task, "method": method_name(method), "model": r["model"], "steps": r["steps"],
                             "accuracy %": percent(test.model_accuracy),
                             "lenient %": percent(test.model_accuracy_lenient),
                             "compiled program %": percent(test.compiled_accuracy), "prompts": test.prompts,
                             "perplexity": f"{r['perplexity']:.1f}", "paper accuracy %": paper[0],
                             "paper perplexity": paper[1]})
            else:
                rows.append({"task": task, "method": method_name(method), "model": "not run", "steps": "",
                             "accuracy %": "not run", "lenient %": "", "compiled program %": "", "prompts": "",
                             "perplexity": "not run", "paper accuracy %": paper[0], "paper perplexity": paper[1]})
    corpus = records[0]["corpus"]
    write(pd.DataFrame(rows), "table1", "Table 1 — task accuracy and perplexity",
          ["accuracy: strict greedy exact match on the test split (the answer, then a token that ends it); "
           "lenient: the answer tokens only (' 31' passes for 3)",
           f"perplexity: mean per-line perplexity on {corpus}",
           "paper columns: GPT-2-large after 80k steps (seed 000 Tables 1/3; perplexity on Tiny-Shakespeare)",
           "'compiled program' is the compiled RASP program on the same prompts (its upper bound)"]
          + unfinished_notes(records))
