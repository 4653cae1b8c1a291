"""Stage ``evaluate``: task accuracy (greedy exact match), OOD suites, perplexity, few-shot benchmarks."""

from workbench.evaluate.accuracy import (answer_accuracy, answer_correct, answer_tokens, compiled_correct,
                                         teacher_forced_correct)
from workbench.evaluate.generate import greedy, greedy_one_at_a_time

__all__ = ["answer_accuracy", "answer_correct", "answer_tokens", "compiled_correct", "greedy", "greedy_one_at_a_time",
           "teacher_forced_correct"]
