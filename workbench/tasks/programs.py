"""The causal RASP programs of the three injected tasks.

Each program reads a *compiled view* of the prompt: every model token becomes one compiled
token (the program's own symbols where they matter, ``FILLER`` elsewhere, ``ANSWER`` for the
answer marker) and its output at position t is the answer token the language model must
predict at t + 1. All programs are written for causal compilation: at position t they only
use positions ≤ t, so they are exact at every answer position.

Value sets are kept small (tracr's MLPs grow with the product of their inputs' value sets),
and every variable that a researcher may want to decode is named.
"""

from __future__ import annotations

from tracr.rasp import rasp

FILLER = "_"
ANSWER = "answer"
END = "end"  # output after the last answer digit
NONE = "-"  # output where the program has nothing to say
DIGITS = [str(d) for d in range(10)]

DYCK_PAIRS = ("()", "{}", "[]")


def _count(predicate, name: str) -> rasp.SOp:
    """Number of positions ≤ t whose token satisfies ``predicate`` (causal SelectorWidth)."""
    return rasp.SelectorWidth(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: predicate(k))).named(name)


def _sign(a, b):
    return (a > b) - (a < b)


def _merge_states(x, y):
    """Combine per-family balance states: any negative wins, then any open, else closed."""
    if "neg" in (x, y):
        return "neg"
    if "open" in (x, y):
        return "open"
    return "closed"


def shuffle_dyck(pairs=DYCK_PAIRS) -> rasp.SOp:
    """1 block of counts, 3 of combination, 1 of prefix check: is the prefix ≤ t shuffle-dyck balanced?

    Per family: opens and closes so far (SelectorWidth), their state (closed / open / neg).
    The prefix is balanced iff every family is closed now and no family was ever negative.
    """
    states = []
    for pair in pairs:
        left, right = pair
        opens = _count(lambda k, s=left: k == s, f"{left}_opens")
        closes = _count(lambda k, s=right: k == s, f"{right}_closes")
        state = rasp.SequenceMap(lambda o, c: {1: "open", 0: "closed", -1: "neg"}[_sign(o, c)], opens, closes)
        states.append(state.named(f"{pair}_state"))
    combined = states[0]
    for index, state in enumerate(states[1:], start=1):
        combined = rasp.SequenceMap(_merge_states, combined, state).named(
            "state" if index == len(states) - 1 else f"state_{index}")
    ever_negative = rasp.SelectorWidth(
        rasp.Select(combined, combined, lambda k, q: k == "neg")).named("negative_prefixes")
    return rasp.SequenceMap(lambda n, s: n == 0 and s == "closed", ever_negative, combined).named("balanced")


def count_x(symbol: str = "x") -> rasp.SOp:
    """Number of ``symbol`` so far, written digit by digit once the answer marker is seen.

    Answer digits already written are counted (not located by offset), so a tokenizer may put
    filler tokens (a lone space) between the marker and the digits.
    """
    n = _count(lambda k: k == symbol, f"count_{symbol}")
    # The marker and the answer digits are the only such tokens (the question has no digits).
    marks = _count(lambda k: k == ANSWER or k in DIGITS, "answer_tokens_seen")
    stage = rasp.Map(lambda m: NONE if m == 0 else min(m - 1, 2), marks).named("answer_stage")

    def next_token(count, stage):
        if stage == NONE:
            return NONE
        text = str(count)
        return text[stage] if stage < len(text) else END

    return rasp.SequenceMap(next_token, n, stage).named("next_token")


def integer_sum() -> rasp.SOp:
    """``a + b =`` followed by the digits of a + b, one per position (operands of ≤ 3 digits).

    Digits of each operand are read right to left relative to the '+' and '=' positions; a
    digit slot outside its operand reads the marker token instead, whose digit value is 0, so
    every lookup selects exactly one key. Columns are added with their carries; the output at
    '=' and after k written answer digits is the (k+1)-th digit of the sum without leading
    zeros, then END (written digits are counted, so filler tokens may sit between them).
    """
    max_digits = 3
    digit = rasp.Map(lambda t: int(t) if t in DIGITS else 0, rasp.tokens).named("digit")
    plus_at = rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "+"),
                             rasp.indices).named("plus_position")
    equals_at = rasp.Aggregate(rasp.Select(rasp.tokens, rasp.tokens, lambda k, q: k == "="),
                               rasp.indices).named("equals_position")
    # ('=' position, digits of b clipped to max_digits): enough to address b's digits safely.
    b_frame = rasp.SequenceMap(lambda e, p: (e, min(max(e - p - 1, 0), max_digits)), equals_at, plus_at
                               ).named("b_frame")
    # Which answer digit comes next: the number of digits written after '=' (None before '=').
    digit_index = rasp.SequenceMap(lambda t, i: i if t in DIGITS else -1, rasp.tokens, rasp.indices
                                   ).named("digit_index")
    answer_index = rasp.SelectorWidth(rasp.Select(digit_index, equals_at, lambda k, e: k > e)
                                      ).named("answer_index")

    a_digits, b_digits = [], []
    for m in range(max_digits):
        a_select = rasp.Select(rasp.indices, plus_at,
                               lambda k, p, m=m: k == (p - 1 - m if p - 1 - m >= 0 else p))
        a_digits.append(rasp.Aggregate(a_select, digit).named(f"a_digit{m}"))
        b_select = rasp.Select(rasp.indices, b_frame,
                               lambda k, f, m=m: k == (f[0] - 1 - m if m < f[1] else f[0]))
        b_digits.append(rasp.Aggregate(b_select, digit).named(f"b_digit{m}"))

    # Column m holds a_m + b_m + carry in (0..19); the top column keeps its own carry.
    columns = [rasp.SequenceMap(lambda x, y: x + y, a_digits[0], b_digits[0]).named("column0")]
    for m in range(1, max_digits):
        pair = rasp.SequenceMap(lambda x, y: x + y, a_digits[m], b_digits[m]).named(f"pair{m}")
        columns.append(rasp.SequenceMap(lambda s, low: s + (low >= 10), pair, columns[-1]).named(f"column{m}"))

    # Number of digits of the sum: the top column decides unless it is 0; then the column
    # below it has no carry out, so it decides between 2 digits and 1.
    length = rasp.SequenceMap(
        lambda top, below: 4 if top >= 10 else 3 if top > 0 else 2 if below > 0 else 1,
        columns[-1], columns[-2]).named("sum_length")

    # The column whose digit is emitted next (its significance), or END.
    place = rasp.SequenceMap(lambda k, n: n - 1 - k if k < n else END, answer_index, length).named("place")

    out = place
    for m, column in enumerate(columns):
        top = m == max_digits - 1

        def emit(current, c, m=m, top=top):
            if current == m:
                return str(c % 10)
            if top and current == m + 1:
                return str(c // 10)
            return current

        out = rasp.SequenceMap(emit, out, column).named("next_token" if top else f"emitted{m}")
    return out


def _either_nonzero(x, y) -> int:
    return 1 if (x != 0 or y != 0) else 0


def shuffle_dyck_paper(pairs=DYCK_PAIRS) -> rasp.SOp:
    """The paper's Algorithm 1 with its Figure 6 variables, causal; ``final_result`` is read at ``ANSWER``.

    Per family ``(left, right)``: ``left_start_counts`` / ``right_end_counts`` (brackets so far),
    ``pair_diffs`` = their difference (-n..n), ``pair_negative_counters`` = positions so far whose
    diff was < 0 (a SelectorWidth keyed on the diffs). Then ``aggregated_negatives`` = 1 if any
    family's counter is non-zero, ``aggregated_diffs`` = 1 if any family's diff is non-zero,
    ``unfiltered_result`` = both are 0, ``final_result`` = ``unfiltered_result`` at the answer
    marker (the paper's ``compute`` token), False elsewhere.

    Every variable has the paper's value at every position of every input, so the outputs equal
    the paper's program compiled with plain tracr. Two changes keep the MLPs small (the paper's
    program: 310 s to compile at max_seq_len 40, 9,701 hidden units per block at 48):

    - The counts are numerical SelectorWidths, so each diff is a numerical difference
      (``pair_diffs_numerical``, 2 hidden units) turned into the categorical ``pair_diffs``,
      instead of a SequenceMap over two 0..n count sets ((n+1)² hidden units per family). One
      block more than the paper's 7; the counts are one number each in the residual, not one-hot.
    - Each diff is mapped to a bool (``pair_diffs_nonzero``) before the families are combined,
      instead of a SequenceMap over two -n..n diff sets ((2n+1)² hidden units).

    The paper's unnamed first combination of the negative counters is ``aggregated_negatives_tmp_0``
    (Figure 6's ``sequence_map``; its diffs counterpart is the figure's ``aggregated_diffs_tmp_0``).
    Figure 6 labels ``[_end_counts`` what counts ``]`` and ``{_diffs`` / ``{_negative_counters`` the
    ``{}`` family's: here ``]_end_counts``, ``{}_diffs``, ``{}_negative_counters``.
    """
    negatives, nonzero_diffs = [], []
    for pair in pairs:
        left, right = pair
        starts = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q, s=left: k == s)
        start_counts = rasp.numerical(rasp.SelectorWidth(starts)).named(f"{left}_start_counts")
        ends = rasp.Select(rasp.tokens, rasp.tokens, lambda k, q, s=right: k == s)
        end_counts = rasp.numerical(rasp.SelectorWidth(ends)).named(f"{right}_end_counts")
        numerical_diffs = rasp.numerical(rasp.LinearSequenceMap(start_counts, end_counts, 1, -1)).named(
            f"{pair}_diffs_numerical")
        diffs = rasp.categorical(rasp.Map(lambda x: x, numerical_diffs)).named(f"{pair}_diffs")
        negs_selector = rasp.Select(diffs, rasp.tokens, lambda k, q: k < 0)
        negatives.append(rasp.SelectorWidth(negs_selector).named(f"{pair}_negative_counters"))
        nonzero = rasp.Map(lambda x: x != 0, diffs, simplify=False)  # from the diffs, not fused with their Map
        nonzero_diffs.append(nonzero.named(f"{pair}_diffs_nonzero"))

    def aggregate(values, name):
        current = values[0]
        for index, value in enumerate(values[1:]):
            last = index == len(values) - 2
            current = rasp.SequenceMap(_either_nonzero, current, value).named(name if last else f"{name}_tmp_{index}")
        return current

    aggregated_negatives = aggregate(negatives, "aggregated_negatives")
    aggregated_diffs = aggregate(nonzero_diffs, "aggregated_diffs")
    unfiltered = rasp.SequenceMap(lambda x, y: x == 0 and y == 0, aggregated_negatives, aggregated_diffs
                                  ).named("unfiltered_result")
    return rasp.SequenceMap(lambda x, t: x if t == ANSWER else False, unfiltered, rasp.tokens).named("final_result")
