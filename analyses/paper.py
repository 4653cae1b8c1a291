"""Reference numbers of the Tracr-Injection paper (GPT-2-large; seed 000, Tables 2 and 3)."""

# (accuracy %, Tiny-Shakespeare perplexity, SST-2 %, MRPC %, LAMBADA %) per task and method.
TABLE3 = {
    "dyck": {"none": (0.0, 569.7, 67.4, 63.7, 58.8), "ft": (100.0, 569.3, 65.1, 58.8, 58.8),
             "ti": (99.9, 569.9, 75.2, 66.7, 58.8)},
    "sum": {"none": (0.1, 569.7, 67.4, 63.7, 58.8), "ft": (99.7, 570.1, 67.2, 66.2, 58.7),
            "ti": (95.0, 572.4, 65.0, 65.9, 58.9)},
    "count": {"none": (0.0, 569.7, 67.4, 63.7, 58.8), "ft": (99.8, 571.2, 71.0, 61.8, 58.7),
              "ti": (99.2, 571.4, 64.0, 65.7, 58.8)},
}
COLUMNS3 = ("accuracy", "perplexity", "sst2", "mrpc", "lambada")

# OOD accuracy % (TI, FT) per task and suite.
TABLE2 = {
    ("sum", "cascading_overflow"): (47.8, 49.1), ("sum", "four_digits"): (0.9, 6.6), ("sum", "decimals"): (0.0, 0.0),
    ("dyck", "almost_balanced"): (96.6, 75.28), ("dyck", "triple_length"): (98.5, 88.6),
    ("dyck", "new_family"): (99.1, 84.3),
    ("count", "x_only"): (21.9, 33.3), ("count", "triple_length"): (2.8, 3.5), ("count", "y_to_z"): (4.6, 3.0),
}
METHOD_NAMES = {"none": "no edit", "ft": "FT+KL", "ti": "TI"}
