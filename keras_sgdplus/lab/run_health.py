"""What went wrong in a run that ended without an error: its loss exploded, it sits at
chance level, or it did not learn, each said with its numbers and what to try.

A non-finite loss already ends a run as `diverged`; these are the runs that end `completed`
(or stopped, interrupted) and are no good all the same, like online training on digits at
rate 0.05 and momentum 0.9 (issue 11): within a hundred steps the loss jumps far above its
start, the network ends up answering (nearly) one class, and validation accuracy stays at
about 10%. On TensorFlow, Keras computes the cross-entropy from the softmax's logits and a
batch loss reaches 10^8; on JAX it clips the probabilities at 1e-7, so no sample's loss
exceeds -ln(1e-7) = 16.1 and the jump shows as an epoch whose mean loss is five times the
start. The status stays what it is (the run did complete what it was asked); the diagnoses
are warnings stored in the run's summary under `warnings` (`training.run_training` judges
the run at its end), and computed from a run's files for runs stored without them
(`warnings_of`).

The numbers judged, and why these thresholds:

- **The initial loss**: the median loss of the first `INITIAL_STEPS` (10) steps, or of the
  first tenth of the run when it is shorter (at least one step). One step is a poor
  reference in online training: the loss of single samples of digits at the start ranges
  from 0.03 to 4 within ten steps. A median ignores a few such outliers, and a loss that
  starts to explode after a few steps does not move it. It is the loss of a model that
  knows nothing yet (about ln(classes) for cross-entropy, about 1 for standardised
  regression targets): a run that learns brings the loss below it.
- **Exploded**: the largest finite batch loss is more than `EXPLODED_FACTOR` (1000) times
  the initial loss, or the last epoch's mean training loss more than `RISE_FACTOR` (3)
  times. Single samples put a batch a few ten times above the start at worst; three orders
  of magnitude is no noise but weights thrown far from where they began. A loss that
  cannot grow that far (clipped cross-entropy) shows the same in its mean: three times the
  loss of knowing nothing is far worse than guessing (cross-entropy: the true class given,
  on average, the cube of a uniform guess's probability), where a run that learns ends
  below its start.
- **At chance**: the final validation accuracy is at most a margin above chance level.
  Chance level is the accuracy of always predicting the validation set's most common class
  (its majority share, stored as `chance_accuracy`), not 1/classes: a network that
  collapsed answers one class, and on an unbalanced set (breast cancer: 63% one class) it
  scores that class's share, far above 1/classes; a model that ignores its inputs scores
  at most that share. For balanced sets the two agree. The margin is the noise of the
  validation set: `CHANCE_SIGMAS` (2) standard deviations of a guessing model's accuracy,
  sqrt(c(1 - c)/n) for chance c and n validation samples (stored as
  `validation_samples`), at least `CHANCE_MARGIN` (2 points). On digits (360 samples,
  chance 10.3%) that is 3.2 points: the issue's JAX run, 12.5%, is at chance; a model
  that learns is far above. An accuracy below chance (stuck on a minority class) counts
  too. Runs stored without these are judged against 1/classes of their built-in dataset
  and its validation size from the registry, and not at all on a user's file.
- **Not learning**: after two epochs or more, the last epoch's mean training loss is not
  below the initial loss. Not said of a run at chance or exploded (the same advice, said
  once).

Pure: NumPy only, neither Keras nor Streamlit; `LossWatch` sees a run's batch losses as
they are recorded, so its end needs no pass over `batches.csv`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: The first steps whose median loss is the initial loss (see the module's docstring).
INITIAL_STEPS = 10
#: A finite batch loss this many times the initial loss: the loss exploded.
EXPLODED_FACTOR = 1000.0
#: A last epoch's mean training loss this many times the initial loss: exploded too.
RISE_FACTOR = 3.0
#: At chance: at most this many standard deviations of a guess's accuracy above chance...
CHANCE_SIGMAS = 2.0
#: ...and at least this margin (2 points).
CHANCE_MARGIN = 0.02
#: The linear scaling rule's reference: the Train page's default mini-batch.
REFERENCE_BATCH = 32
#: Statuses judged: a diverged run is named by its status, a live one is not over.
JUDGED_STATUSES = ("completed", "stopped", "interrupted", "failed")

RANGE_TEST = (
    'the learning-rate range test (`sgdplus lr-find`, or "Find a learning rate" on the '
    "Train page) try rates on this setup and suggest one"
)
LINEAR_SCALING = "the linear scaling rule (rate proportional to batch size, Goyal et al. 2017)"


@dataclass(frozen=True)
class Diagnosis:
    """One warning about a run: `kind` ("exploded", "at_chance", "not_learning"), a short
    `title`, what happened with the numbers (`detail`) and what to try (`advice`)."""

    kind: str
    title: str
    detail: str
    advice: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        return cls(**{key: str(data.get(key, "")) for key in ("kind", "title", "detail", "advice")})

    def text(self) -> str:
        """The whole warning on one line: title, what happened, what to try."""
        return f"{self.title}: {self.detail} {self.advice}"


class LossWatch:
    """A batch sink (`engine.recorder.BatchSink`) that passes every chunk of batch columns
    on to `sink` and keeps what the diagnosis needs: the losses of the first
    `INITIAL_STEPS` steps and the largest finite loss with its step."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.first: dict[int, float] = {}
        self.max_loss: float | None = None
        self.max_step: int | None = None

    def put(self, columns: Mapping[str, Any]) -> None:
        self.sink.put(columns)
        self.add(columns["step"], columns["loss"])

    def flush(self, *, sync: bool = True) -> None:
        self.sink.flush(sync=sync)

    def add(self, steps: Iterable[Any], losses: Iterable[Any]) -> None:
        """Takes the losses of these steps into account (steps already seen replace theirs)."""
        step_array = np.asarray(steps, dtype="int64").reshape(-1)
        loss_array = np.asarray(losses, dtype="float64").reshape(-1)
        early = step_array < INITIAL_STEPS
        for step, loss in zip(step_array[early], loss_array[early], strict=True):
            self.first[int(step)] = float(loss)
        finite = np.isfinite(loss_array)
        if finite.any():
            at = int(np.argmax(np.where(finite, loss_array, -np.inf)))
            if self.max_loss is None or loss_array[at] > self.max_loss:
                self.max_loss, self.max_step = float(loss_array[at]), int(step_array[at])

    def stats(self, total_steps: int | None) -> dict[str, Any]:
        """`initial_loss`, `max_batch_loss` and `max_batch_loss_step` for the summary."""
        first = [self.first[step] for step in sorted(self.first)]
        return {
            "initial_loss": initial_loss(first, total_steps),
            "max_batch_loss": self.max_loss,
            "max_batch_loss_step": self.max_step,
        }


def initial_loss(first_losses: Iterable[float], total_steps: int | None) -> float | None:
    """The median of the finite losses of the first `INITIAL_STEPS` steps (`first_losses`,
    in step order), or of the first tenth of a run of `total_steps` when that is fewer (at
    least one); None without any."""
    count = INITIAL_STEPS
    if isinstance(total_steps, int) and total_steps > 0:
        count = max(1, min(INITIAL_STEPS, total_steps // 10))
    losses = [float(x) for x in list(first_losses)[:count] if math.isfinite(float(x))]
    return float(np.median(losses)) if losses else None


def loss_stats(steps: Iterable[Any], losses: Iterable[Any], total_steps: int | None) -> dict:
    """`LossWatch.stats` of a run's whole batch curve (a run stored before the summary kept
    them: its `batches.csv` columns `step` and `loss`)."""
    watch = LossWatch(None)
    watch.add(steps, losses)
    return watch.stats(total_steps)


def chance_accuracy(labels: Any) -> float | None:
    """The accuracy of always predicting the most common class of these class ids (the
    validation labels): the chance level a classifier is judged against; None when empty."""
    values = np.asarray(labels).reshape(-1)
    if values.size == 0:
        return None
    _, counts = np.unique(values, return_counts=True)
    return float(counts.max() / values.size)


def validation_facts(labels: Any, task: str) -> dict[str, Any]:
    """What judging a run's accuracy needs of its validation labels, for its summary:
    `chance_accuracy` (`chance_accuracy(labels)`; None for regression) and
    `validation_samples`."""
    values = np.asarray(labels)
    return {
        "chance_accuracy": None if task == "regression" else chance_accuracy(values),
        "validation_samples": len(values),
    }


def registry_facts(config: Mapping[str, Any]) -> dict[str, Any]:
    """`validation_facts` of a run stored without them, from the registry: 1/classes of its
    built-in classification dataset and the size of its validation part; {} for regression
    or a user's file."""
    from keras_sgdplus.lab.datasets.registry import DATASETS  # no Keras: the registry only

    info = DATASETS.get(str(config.get("dataset")))
    if info is None or info.task == "regression" or not info.num_classes:
        return {}
    size = config.get("n_samples") if info.source == "generated" else None
    size = size if isinstance(size, int) and size > 0 else info.size
    split = _number(config.get("validation_split"))
    return {
        "chance_accuracy": 1.0 / info.num_classes,
        "validation_samples": math.ceil(split * size) if split else None,
    }


def chance_margin(chance: float, validation_samples: int | None) -> float:
    """How far above chance level an accuracy still is chance: `CHANCE_SIGMAS` standard
    deviations of a guess's accuracy on this many samples, at least `CHANCE_MARGIN`."""
    if not validation_samples or validation_samples < 1:
        return CHANCE_MARGIN
    noise = math.sqrt(chance * (1.0 - chance) / validation_samples)
    return max(CHANCE_MARGIN, CHANCE_SIGMAS * noise)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _rate_advice(config: Mapping[str, Any]) -> str:
    """What to try about the rate, with this run's numbers."""
    optimizer = config.get("optimizer") or {}
    rate = _number(optimizer.get("learning_rate"))
    parts = []
    if rate:
        parts.append(f"Lower the learning rate, e.g. 10x to {rate / 10:.3g} (it was {rate:g})")
    else:
        parts.append("Lower the learning rate, e.g. 10x")
    momentum = _number(optimizer.get("momentum"))
    if optimizer.get("name", "sgdplus") == "sgdplus" and momentum and momentum > 0.5:
        parts.append(f"or the momentum (it was {momentum:g}; 0.5 takes steps 5x shorter)")
    batch = config.get("batch_size")
    text = ", ".join(parts) + f"; or let {RANGE_TEST}."
    if rate and isinstance(batch, int) and batch < REFERENCE_BATCH:
        scaled = rate * batch / REFERENCE_BATCH
        kind = "online (batch 1)" if batch == 1 else f"batch {batch}"
        text += (
            f" For {kind}, {LINEAR_SCALING} turns a rate of {rate:g} meant for batch "
            f"{REFERENCE_BATCH} into {scaled:.3g}."
        )
    return text


def diagnose(summary: Mapping[str, Any], config: Mapping[str, Any], status: str) -> list[Diagnosis]:
    """The warnings about a run with this summary (its `initial_loss`, `max_batch_loss`,
    `max_batch_loss_step`, `chance_accuracy`, `validation_samples`, final metrics), config
    and status; empty for a healthy run, and for a run diverged or live (its status says
    it)."""
    if status not in JUDGED_STATUSES:
        return []
    found: list[Diagnosis] = []
    start = _number(summary.get("initial_loss"))
    peak = _number(summary.get("max_batch_loss"))
    final = _number(summary.get("final_loss"))
    exploded = _explosion(start, peak, summary.get("max_batch_loss_step"), final)
    if exploded:
        found.append(Diagnosis("exploded", "The loss exploded", exploded, _rate_advice(config)))
    accuracy = _number(summary.get("final_val_accuracy"))
    facts = summary if _number(summary.get("chance_accuracy")) is not None else {}
    facts = facts or registry_facts(config)
    chance = _number(facts.get("chance_accuracy"))
    at_chance = False
    if accuracy is not None and chance is not None:
        samples = facts.get("validation_samples")
        margin = chance_margin(chance, samples if isinstance(samples, int) else None)
        at_chance = accuracy <= chance + margin
    if at_chance:
        assert accuracy is not None
        found.append(
            Diagnosis(
                "at_chance",
                "At chance level",
                f"The final validation accuracy, {accuracy:.1%}, is no better than chance "
                f"({chance:.1%}, always answering the most common class): within "
                f"{margin * 100:.1f} points, the noise of the validation set.",
                "The explosion is the likely cause: the network ended up answering (nearly) "
                "one class; what helps against it helps here."
                if found
                else "A rate too large can leave the network answering one class; one too "
                "small, or too few epochs, leaves it where it began. " + _rate_advice(config),
            )
        )
    epochs = summary.get("epochs_completed")
    if (
        not found
        and start is not None
        and final is not None
        and isinstance(epochs, int)
        and epochs >= 2
        and final >= start
    ):
        found.append(
            Diagnosis(
                "not_learning",
                "Not learning",
                f"The last epoch's training loss, {final:.4g}, is not below the "
                f"{start:.4g} of the first steps.",
                "Too large a rate makes the loss bounce; too small a rate barely moves it. "
                + _rate_advice(config),
            )
        )
    return found


def _explosion(start: float | None, peak: float | None, step: Any, final: float | None) -> str:
    """What happened, when the loss exploded (see the module's docstring); "" otherwise."""
    if start is None or start <= 0:
        return ""
    thrown = "the steps were too long and threw the weights far from where they began"
    if peak is not None and peak > EXPLODED_FACTOR * start:
        where = f" at step {step:,}" if isinstance(step, int) else ""
        return (
            f"A batch loss reached {peak:.3g}{where}, {peak / start:.3g} times the "
            f"{start:.3g} of the first steps: {thrown} (the run went on, as the loss stayed "
            "finite)."
        )
    if final is not None and final > RISE_FACTOR * start:
        return (
            f"The last epoch's mean training loss, {final:.3g}, is {final / start:.3g} times "
            f"the {start:.3g} of the first steps, far worse than a model that knows nothing: "
            f"{thrown}."
        )
    return ""


def judged_summary(
    summary: Mapping[str, Any], config: Mapping[str, Any], status: str, facts: Mapping[str, Any]
) -> dict[str, Any]:
    """`summary` with the numbers judged (`facts`: a `LossWatch`'s `stats` and the
    `validation_facts`) and the `warnings` found (a list of `Diagnosis.to_dict`, empty for a
    healthy run): what a run's end stores."""
    judged = {**summary, **facts}
    judged["warnings"] = [d.to_dict() for d in diagnose(judged, config, status)]
    return judged


def warnings_of(
    meta: Mapping[str, Any], batches: Callable[[], Any] | None = None
) -> list[Diagnosis]:
    """The warnings about a stored run: those its summary holds, or, for a run stored
    without them (before this module, or interrupted), those its files give: `batches()`
    returns its batch curve (columns `step` and `loss`, e.g. `RunStore.load_curve(run_id,
    "batches")`); without it such a run gets none."""
    summary = meta.get("summary") or {}
    stored = summary.get("warnings")
    if isinstance(stored, list):
        return [Diagnosis.from_dict(d) for d in stored if isinstance(d, Mapping)]
    status = str(meta.get("status"))
    if status not in JUDGED_STATUSES or batches is None:
        return []
    curve = batches()
    stats = loss_stats(curve["step"], curve["loss"], summary.get("total_steps"))
    return diagnose({**summary, **stats}, meta.get("config") or {}, status)


def short_label(diagnoses: Iterable[Diagnosis]) -> str:
    """The diagnoses' titles after a warning sign, for a table cell ("" when none)."""
    titles = [d.title for d in diagnoses]
    return ("⚠ " + "; ".join(titles)) if titles else ""


def linear_scaling(
    rate: float, before: int | None, after: int | None, n_train: int
) -> tuple[int, int, float]:
    """The linear scaling rule (Goyal et al. 2017): a rate that suits batches of `before`
    samples suits batches of `after` samples multiplied by after/before. Batch sizes as a
    config holds them (None: the whole training set of `n_train` samples; a batch larger
    than the set is the set). Returns (B0, B1, the scaled rate to 4 significant digits)."""
    old, new = (min(b or n_train, n_train) for b in (before, after))
    return old, new, float(f"{rate * new / old:.4g}")
