"""The arithmetic of a learning-rate range test: the swept rates, the smoothed loss, where the
test stops, and the rules that read a learning rate off the curve. NumPy only; the Keras side
(training the steps, restoring the model) is `lab/range_test.py`.

The test (Smith, 2017, "Cyclical Learning Rates for Training Neural Networks", section 3.3,
as fastai's `lr_find` and PyTorch Lightning's `Tuner.lr_find` run it): train a copy of the
model for `steps` steps at learning rates growing exponentially from `start` to `end`,

    rate_i = start * (end / start) ** (i / (steps - 1)),        i = 0 .. steps - 1,

record each step's **own** loss (the batch's loss before its update, not Keras's running
epoch mean, which lags the rates and points at rates too high: tensorflow/tensorflow#58098),
smooth it with a debiased exponential moving average,

    avg_i      = beta * avg_{i-1} + (1 - beta) * loss_i,        avg_{-1} = 0
    smoothed_i = avg_i / (1 - beta ** (i + 1)),

and stop once `smoothed_i > divergence * min(smoothed_0 .. smoothed_i)` for some i >= 1
(the loss has blown up; that step is kept, as both tools keep it) or a loss is not finite
(that step is not kept).

A rule then names one rate of the curve (`RULES`, measured against each other by
`benchmarks/lr_find_rules.py`; the README gives the table and why `DEFAULT_RULE` won).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_DIVERGENCE",
    "DEFAULT_END",
    "DEFAULT_RULE",
    "DEFAULT_START",
    "DEFAULT_STEPS",
    "MIN_STEPS",
    "RULES",
    "RangeTestResult",
    "check_options",
    "make_result",
    "minimum_tenth",
    "smooth",
    "steepest",
    "stop_index",
    "suggest",
    "swept_rates",
    "valley",
]

#: fastai's and Lightning's defaults: 1e-7 to 10 in 100 steps, beta 0.98, stop at 4x the best.
DEFAULT_START = 1e-7
DEFAULT_END = 10.0
DEFAULT_STEPS = 100
DEFAULT_BETA = 0.98
DEFAULT_DIVERGENCE = 4.0
#: The fewest steps a test may take: the rules leave out the first tenth and the last steps.
MIN_STEPS = 10


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}"


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def check_options(
    start: Any, end: Any, steps: Any, beta: Any, divergence: Any, rule: Any = None
) -> None:
    """Raises ValueError, in Keras's style, naming the first bad option (`rule` None: not
    checked)."""
    for name, value in (("start", start), ("end", end)):
        if not (_is_number(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a finite number > 0. {_received(name, value)}")
    if not end > start:
        raise ValueError(f"`end` must be greater than `start` ({start!r}). {_received('end', end)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < MIN_STEPS:
        raise ValueError(f"`steps` must be an integer >= {MIN_STEPS}. {_received('steps', steps)}")
    if not (_is_number(beta) and 0 <= beta < 1):
        raise ValueError(f"`beta` must be a number in [0, 1). {_received('beta', beta)}")
    if not (_is_number(divergence) and divergence > 1):  # NaN fails the comparison
        raise ValueError(
            "`divergence` must be a number > 1 (inf: never stop). "
            f"{_received('divergence', divergence)}"
        )
    if rule is not None and rule not in RULES:
        raise ValueError(f"`rule` must be one of {', '.join(RULES)}. {_received('rule', rule)}")


def swept_rates(start: float, end: float, steps: int) -> np.ndarray:
    """`start * (end / start) ** (i / (steps - 1))` for i = 0 .. steps - 1 (float64)."""
    return start * (end / start) ** (np.arange(steps, dtype="float64") / (steps - 1))


def smooth(losses: Sequence[float] | np.ndarray, beta: float = DEFAULT_BETA) -> np.ndarray:
    """The debiased exponential moving average of the losses (Adam's bias correction, as
    fastai's `SmoothenValue` and Lightning's `_LRCallback` compute it):
    `avg_i = beta * avg_{i-1} + (1 - beta) * loss_i` from `avg_{-1} = 0`, divided by
    `1 - beta ** (i + 1)`."""
    losses = np.asarray(losses, dtype="float64")
    out = np.empty_like(losses)
    average = 0.0
    for i, loss in enumerate(losses):
        average = beta * average + (1.0 - beta) * loss
        out[i] = average / (1.0 - beta ** (i + 1))
    return out


def stop_index(
    losses: Sequence[float] | np.ndarray,
    beta: float = DEFAULT_BETA,
    divergence: float = DEFAULT_DIVERGENCE,
) -> int | None:
    """How many steps the test keeps, or None while it goes on: at the first step `i >= 1`
    whose smoothed loss passes `divergence` times the lowest smoothed loss so far, `i + 1`
    (kept: fastai and Lightning record the step before they stop); at a non-finite loss at
    step `i` before that, `i` (that step is left out)."""
    losses = np.asarray(losses, dtype="float64")
    finite = np.isfinite(losses)
    end = len(losses) if finite.all() else int(np.argmin(finite))
    smoothed = smooth(losses[:end], beta)
    best = np.minimum.accumulate(smoothed) if end else smoothed
    above = np.nonzero(smoothed[1:] > divergence * best[1:])[0]
    if len(above):
        return int(above[0]) + 2
    return None if end == len(losses) else end


def _trimmed(n: int, skip_begin: int, skip_end: int) -> slice:
    """Indices `skip_begin .. n - skip_end - 1`, or the whole curve when that leaves fewer
    than two points (a test that diverged early)."""
    if n - skip_begin - skip_end >= 2:
        return slice(skip_begin, n - skip_end)
    return slice(0, n)


def steepest(rates: np.ndarray, smoothed: np.ndarray) -> int:
    """PyTorch Lightning's `suggestion()` (lightning/pytorch/tuner/lr_finder.py): the steepest
    fall of the smoothed loss, `argmin(np.gradient(smoothed))` over steps 10 .. n - 2 (the
    steps are equal in log rate, so it is the slope against log rate). Smith's "where the
    loss falls fastest"; the smoothing lags the raw loss, so it tends to land late."""
    part = _trimmed(len(smoothed), 10, 1)
    return int(np.argmin(np.gradient(smoothed[part]))) + (part.start or 0)


def valley(rates: np.ndarray, smoothed: np.ndarray) -> int:
    """fastai's `valley` (fastai/callback/schedule.py), on the smoothed loss with fastai's
    trim (the first tenth and the last five steps left out): the longest decreasing
    subsequence of losses, from `max_start` to `max_end`, and in it the point
    `max_start + int(length / 3) + int(length / 6)` (the middle of its middle third)."""
    part = _trimmed(len(smoothed), len(smoothed) // 10, 5)
    losses = smoothed[part]
    n = len(losses)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return max_start + int(sections) + int(sections / 2) + (part.start or 0)


def minimum_tenth(rates: np.ndarray, smoothed: np.ndarray) -> float:
    """fastai's `minimum` (fastai/callback/schedule.py, `lr_min / 10`): the rate of the
    lowest smoothed loss with fastai's trim (steps n // 10 .. n - 6), divided by ten,

        i* = argmin_{n // 10 <= i <= n - 6} smoothed_i,        suggestion = rate_{i*} / 10,

    a decade back from where the loss stops falling. Why a decade: trained for a few epochs
    at a constant rate, the validation accuracy rises with the rate to a plateau that ends
    in a cliff (training blows up), and the lowest smoothed loss of the sweep lies at about
    the cliff's edge; how close to the edge the best rate lies changes from set to set and
    seed to seed more than the curve shows, so a tenth keeps clear of the edge and still
    lands on the plateau, where a fifth or a third falls off it on some sets
    (`benchmarks/lr_find_rules.py`)."""
    part = _trimmed(len(smoothed), len(smoothed) // 10, 5)
    index = int(np.argmin(smoothed[part])) + (part.start or 0)
    return float(rates[index]) / 10.0


#: A rule takes the rates and the smoothed losses and returns the index of the suggested rate
#: on the curve (an int), or a rate off it (a float).
Rule = Callable[[np.ndarray, np.ndarray], "int | float"]

RULES: dict[str, Rule] = {
    "steepest": steepest,
    "valley": valley,
    "minimum_tenth": minimum_tenth,
}
#: Chosen by `benchmarks/lr_find_rules.py` (the README's table): over the bundled and the
#: generated classification sets x 3 seeds, 5 epochs of plain SGD at `minimum_tenth`'s rate
#: came within 0.9 points of the best rate's validation accuracy on average and 4.0 at worst
#: (circle seed 2; 3.3 = one of 30 samples on iris), each rate scored by the mean of 3
#: batch orders; the lowest smoothed loss's rate over 5 or over 3 within 1.5 and 2.6 on
#: average but 9.7 and 12.7 at worst (past the end of the plateau on circle), `valley`
#: within 6.2 (48 at worst: too low a rate on small sets), `steepest` within 7.4 (46 at
#: worst: the smoothed curve's steepest fall lags into the blow-up, or lands in the noise
#: of the first steps).
DEFAULT_RULE = "minimum_tenth"


def suggest(
    rates: Sequence[float] | np.ndarray,
    smoothed: Sequence[float] | np.ndarray,
    rule: str = DEFAULT_RULE,
) -> float | None:
    """The rule's rate for a curve (None for an empty one)."""
    rates, smoothed = np.asarray(rates, "float64"), np.asarray(smoothed, "float64")
    if len(smoothed) == 0:
        return None
    picked = RULES[rule](rates, smoothed)
    return float(rates[picked]) if isinstance(picked, (int, np.integer)) else float(picked)


@dataclass(frozen=True)
class RangeTestResult:
    """A finished range test: the rate and own loss of every kept step, their smoothed
    losses, and the suggested rate (None when no step was kept) by `rule`."""

    learning_rate: list[float]
    loss: list[float]
    smoothed: list[float]
    suggestion: float | None
    rule: str = DEFAULT_RULE

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON): what `.lr_find/` stores."""
        return {
            "learning_rate": self.learning_rate,
            "loss": self.loss,
            "smoothed": self.smoothed,
            "suggestion": self.suggestion,
            "rule": self.rule,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RangeTestResult:
        suggestion = data.get("suggestion")
        return cls(
            learning_rate=[float(v) for v in data["learning_rate"]],
            loss=[float(v) for v in data["loss"]],
            smoothed=[float(v) for v in data["smoothed"]],
            suggestion=None if suggestion is None else float(suggestion),
            rule=str(data.get("rule", DEFAULT_RULE)),
        )

    def suggestion_by(self, rule: str) -> float | None:
        """What another rule suggests on the same curve."""
        return suggest(self.learning_rate, self.smoothed, rule)


def make_result(
    rates: Sequence[float] | np.ndarray,
    losses: Sequence[float] | np.ndarray,
    beta: float = DEFAULT_BETA,
    divergence: float = DEFAULT_DIVERGENCE,
    rule: str = DEFAULT_RULE,
    steps: int | None = None,
) -> RangeTestResult:
    """The result of the steps recorded (perhaps past the stop: cut there, and after
    `steps`): the smoothed losses and the rule's suggestion."""
    rates = np.asarray(rates, dtype="float64")
    losses = np.asarray(losses, dtype="float64")
    count = min(len(rates), len(losses), len(losses) if steps is None else steps)
    rates, losses = rates[:count], losses[:count]
    kept = stop_index(losses, beta, divergence)
    if kept is not None:
        rates, losses = rates[:kept], losses[:kept]
    smoothed = smooth(losses, beta)
    return RangeTestResult(
        learning_rate=[float(v) for v in rates],
        loss=[float(v) for v in losses],
        smoothed=[float(v) for v in smoothed],
        suggestion=suggest(rates, smoothed, rule),
        rule=rule,
    )
