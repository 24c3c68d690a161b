"""Diagnosing a run that went wrong without an error (lab/run_health.py): on hand-made curves,
and on real runs, the issue's online run on digits among them."""

import numpy as np
import pytest

from keras_sgdplus.lab import run_health
from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.datasets import DATASETS
from keras_sgdplus.lab.run_health import (
    CHANCE_MARGIN,
    EXPLODED_FACTOR,
    INITIAL_STEPS,
    REFERENCE_BATCH,
    Diagnosis,
    LossWatch,
    chance_accuracy,
    diagnose,
    initial_loss,
    loss_stats,
    warnings_of,
)
from keras_sgdplus.lab.runs import RunStore

ONLINE = {
    "dataset": "digits",
    "batch_size": 1,
    "optimizer": {"learning_rate": 0.05, "momentum": 0.9},
}
MINI = {
    "dataset": "digits",
    "batch_size": 32,
    "optimizer": {"learning_rate": 0.01, "momentum": 0.0},
}
JUDGED_KEYS = (
    "warnings",
    "chance_accuracy",
    "initial_loss",
    "max_batch_loss",
    "max_batch_loss_step",
)


def noisy_start(rng, n, level=2.3):
    """Losses of a model that knows nothing yet: about `level`, single samples scattered."""
    return level * rng.uniform(0.5, 1.5, n)


def summary_of(losses, **results):
    steps = np.arange(len(losses))
    return {**loss_stats(steps, losses, len(losses)), **results}


def kinds(diagnoses):
    return [d.kind for d in diagnoses]


def test_an_exploded_loss_is_named_with_its_numbers_and_what_to_try():
    rng = np.random.default_rng(0)
    losses = noisy_start(rng, 200)
    losses[60] = 7e6  # the issue: the loss jumped to about 7 million in the first steps
    summary = summary_of(losses, final_loss=2.3, final_val_accuracy=0.9, chance_accuracy=0.1)
    found = diagnose(summary, ONLINE, "completed")
    assert kinds(found) == ["exploded"]
    exploded = found[0]
    start = float(np.median(losses[:INITIAL_STEPS]))
    assert summary["initial_loss"] == pytest.approx(start)
    assert summary["max_batch_loss"] == 7e6
    assert summary["max_batch_loss_step"] == 60
    assert f"{7e6:.3g}" in exploded.detail
    assert "step 60" in exploded.detail
    assert f"{7e6 / start:.3g} times" in exploded.detail
    # what to try, with this run's numbers: 10x lower, less momentum, the range test, and
    # for online training the rate the linear scaling rule gives from batch 32
    assert f"{0.05 / 10:.3g}" in exploded.advice
    assert "momentum (it was 0.9" in exploded.advice
    assert "sgdplus lr-find" in exploded.advice
    assert "Find a learning rate" in exploded.advice
    assert "Goyal et al. 2017" in exploded.advice
    assert f"{0.05 * 1 / REFERENCE_BATCH:.3g}" in exploded.advice


def test_the_noise_of_single_samples_is_no_explosion():
    """Online training's single-sample losses spread over two orders of magnitude; the
    initial loss is a median, so one tiny first loss does not make a normal spike look like
    an explosion, and a spike below the factor is not one either."""
    rng = np.random.default_rng(1)
    losses = noisy_start(rng, 300)
    losses[0] = 0.03  # a first sample the untrained model happens to get right
    losses[100] = 0.5 * EXPLODED_FACTOR * float(np.median(losses[:INITIAL_STEPS]))
    summary = summary_of(losses, final_loss=1.0, final_val_accuracy=0.8, chance_accuracy=0.1)
    assert diagnose(summary, ONLINE, "completed") == []
    losses[100] *= 4  # now twice the factor
    assert kinds(diagnose(summary_of(losses), ONLINE, "completed")) == ["exploded"]


def test_the_initial_loss_of_a_short_run_is_its_first_tenth():
    losses = [4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert initial_loss(losses, total_steps=10) == 4.0  # one step: a full-batch run's first
    assert initial_loss(losses, total_steps=1000) == 1.0  # the median of ten
    assert initial_loss([float("nan"), 2.0], total_steps=1000) == 2.0
    assert initial_loss([], total_steps=5) is None


def test_at_chance_is_judged_against_the_majority_share():
    labels = np.array([0] * 63 + [1] * 37)  # unbalanced, as breast cancer is
    chance = chance_accuracy(labels)
    assert chance == pytest.approx(0.63)  # not 1/classes = 0.5
    binary = {"dataset": "breast_cancer", "batch_size": 32, "optimizer": {"learning_rate": 0.1}}
    stuck = {"initial_loss": 0.7, "max_batch_loss": 1.0, "chance_accuracy": chance}
    found = diagnose({**stuck, "final_val_accuracy": chance}, binary, "completed")
    assert kinds(found) == ["at_chance"]
    assert f"{chance:.1%}" in found[0].detail
    below = diagnose({**stuck, "final_val_accuracy": 0.37}, binary, "stopped")  # minority class
    assert kinds(below) == ["at_chance"]
    above = chance + 2 * CHANCE_MARGIN
    assert diagnose({**stuck, "final_val_accuracy": above}, binary, "completed") == []


def test_a_healthy_run_gets_no_warning():
    rng = np.random.default_rng(2)
    losses = noisy_start(rng, 500) * np.linspace(1.0, 0.1, 500)
    summary = summary_of(
        losses, final_loss=0.3, final_val_accuracy=0.95, chance_accuracy=0.1, epochs_completed=5
    )
    assert diagnose(summary, MINI, "completed") == []


def test_a_run_whose_loss_does_not_fall_is_not_learning():
    regression = {"dataset": "diabetes", "batch_size": 32, "optimizer": {"learning_rate": 1e-6}}
    summary = {"initial_loss": 1.0, "max_batch_loss": 1.3, "final_loss": 1.02}
    found = diagnose({**summary, "epochs_completed": 3}, regression, "completed")
    assert kinds(found) == ["not_learning"]
    assert "1.02" in found[0].detail
    assert "range test" in found[0].advice
    # one epoch: its mean is the start itself, nothing to judge; a falling loss is learning
    assert diagnose({**summary, "epochs_completed": 1}, regression, "completed") == []
    falling = {**summary, "final_loss": 0.5, "epochs_completed": 3}
    assert diagnose(falling, regression, "completed") == []


def test_statuses_that_say_it_already_are_not_judged():
    summary = {"initial_loss": 2.0, "max_batch_loss": 1e9, "final_val_accuracy": 0.1}
    for status in ("diverged", "running", "queued"):
        assert diagnose({**summary, "chance_accuracy": 0.1}, ONLINE, status) == []
    assert kinds(diagnose({**summary, "chance_accuracy": 0.1}, ONLINE, "interrupted")) == [
        "exploded",
        "at_chance",
    ]


def test_an_old_run_is_judged_from_its_files_and_the_registry():
    """A run stored before the summary kept the judged numbers: the losses from its batch
    curve, chance from 1/classes of its built-in dataset (none for a user's file)."""
    rng = np.random.default_rng(3)
    losses = noisy_start(rng, 100)
    losses[30] = 1e7
    curve = {"step": np.arange(100), "loss": losses}
    meta = {
        "status": "completed",
        "config": ONLINE,
        "summary": {"total_steps": 100, "final_val_accuracy": 0.1, "epochs_completed": 1},
    }
    assert kinds(warnings_of(meta, lambda: curve)) == ["exploded", "at_chance"]
    assert warnings_of(meta) == []  # without its curve, nothing is claimed
    on_a_file = {**meta, "config": {**ONLINE, "dataset": "csv"}}
    assert kinds(warnings_of(on_a_file, lambda: curve)) == ["exploded"]


def test_stored_warnings_are_read_back_without_the_files():
    stored = Diagnosis("at_chance", "At chance level", "10.0% ...", "Lower the rate.")
    meta = {"status": "completed", "config": ONLINE, "summary": {"warnings": [stored.to_dict()]}}

    def no_files():
        raise AssertionError("the stored warnings need no curve")

    assert warnings_of(meta, no_files) == [stored]
    assert run_health.short_label([stored]) == "⚠ At chance level"
    assert run_health.short_label([]) == ""


def test_the_watch_passes_chunks_on_and_sees_what_the_whole_curve_gives():
    class Sink:
        def __init__(self):
            self.chunks, self.flushes = [], []

        def put(self, columns):
            self.chunks.append(columns)

        def flush(self, *, sync=True):
            self.flushes.append(sync)

    rng = np.random.default_rng(4)
    losses = noisy_start(rng, 57)
    losses[40] = 1e5
    losses[50] = np.nan  # a diverged chunk ends with its non-finite loss
    sink = Sink()
    watch = LossWatch(sink)
    for begin in range(0, 57, 7):  # chunks of 7 steps, across the first ten
        steps = np.arange(begin, min(begin + 7, 57))
        watch.put({"step": steps, "loss": losses[steps]})
    watch.flush(sync=False)
    assert len(sink.chunks) == 9
    assert sink.flushes == [False]
    assert watch.stats(57) == loss_stats(np.arange(57), losses, 57)
    assert watch.stats(57)["max_batch_loss_step"] == 40


# --- real runs --------------------------------------------------------------------------------


def train(tmp_path, batch_size, learning_rate, momentum, epochs):
    from keras_sgdplus.lab.training import run_training

    store = RunStore(tmp_path)
    config = TrainingConfig(
        dataset="digits",
        model=ModelSpec(),  # the Train page's default model
        batch_size=batch_size,
        epochs=epochs,
        device="cpu",
        optimizer=OptimizerSpec(learning_rate=learning_rate, momentum=momentum),
    )
    run_id = run_training(config, store)
    return store, run_id, store.load_meta(run_id)


@pytest.mark.usefixtures("fresh_keras_state")
def test_the_issues_online_run_on_digits_is_warned_about(tmp_path):
    """Issue 11: online on digits at the default rate 0.05 and momentum 0.9. The loss
    explodes, validation accuracy sits at chance, and the run still completes: its summary
    says so, and its files say the same for a reader of a run stored without warnings."""
    store, run_id, meta = train(tmp_path, 1, 0.05, 0.9, epochs=1)
    assert meta["status"] == "completed"
    summary = meta["summary"]
    warned = warnings_of(meta)
    assert kinds(warned) == ["exploded", "at_chance"]
    start = summary["initial_loss"]  # TensorFlow: a batch 10^8 times it; JAX, clipped: the mean
    assert summary["max_batch_loss"] > EXPLODED_FACTOR * start or summary["final_loss"] > 3 * start
    chance, samples = summary["chance_accuracy"], summary["validation_samples"]
    digits = DATASETS["digits"]
    assert samples == int(np.ceil(meta["config"]["validation_split"] * digits.size))
    noise = np.sqrt(chance * (1 - chance) / samples)  # two of it: the margin
    assert summary["final_val_accuracy"] <= chance + max(CHANCE_MARGIN, 2 * noise)
    batches = store.load_curve(run_id, "batches")
    assert summary["max_batch_loss"] == batches.loss.max()
    old = {**meta, "summary": {k: v for k, v in summary.items() if k not in JUDGED_KEYS}}
    from_files = warnings_of(old, lambda: store.load_curve(run_id, "batches"))
    assert kinds(from_files) == ["exploded", "at_chance"]


@pytest.mark.usefixtures("fresh_keras_state")
def test_a_healthy_run_on_digits_gets_no_warning(tmp_path):
    store, run_id, meta = train(tmp_path, 32, 0.01, 0.0, epochs=2)
    assert meta["status"] == "completed"
    assert meta["summary"]["warnings"] == []
    assert meta["summary"]["final_val_accuracy"] > meta["summary"]["chance_accuracy"]
    old = {**meta, "summary": {k: v for k, v in meta["summary"].items() if k not in JUDGED_KEYS}}
    assert warnings_of(old, lambda: store.load_curve(run_id, "batches")) == []


def test_a_clipped_loss_that_jumped_shows_the_explosion_in_its_epoch_mean():
    """On JAX, Keras clips the probabilities at 1e-7: no sample's cross-entropy exceeds
    -ln(1e-7) (about 16), so the issue's run shows its explosion as an epoch whose mean loss
    is several times the start, not as a batch a thousand times above it."""
    ceiling = -np.log(1e-7)
    rng = np.random.default_rng(5)
    losses = np.minimum(noisy_start(rng, 300), ceiling)
    losses[30:] = ceiling * rng.uniform(0.7, 1.0, 270)  # confidently wrong from step 30
    final = float(losses[200:].mean())
    summary = summary_of(losses, final_loss=final, epochs_completed=2)
    assert summary["max_batch_loss"] <= ceiling < EXPLODED_FACTOR * summary["initial_loss"]
    found = diagnose(summary, ONLINE, "completed")
    assert kinds(found) == ["exploded"]
    assert f"{final:.3g}" in found[0].detail
    assert f"{final / summary['initial_loss']:.3g} times" in found[0].detail
    below = {**summary, "final_loss": 2.9 * summary["initial_loss"]}  # under the factor 3
    assert kinds(diagnose(below, ONLINE, "completed")) == ["not_learning"]


def test_the_chance_margin_is_the_noise_of_the_validation_set():
    chance = chance_accuracy(np.repeat(np.arange(10), 36))  # 360 balanced samples
    stuck = {"initial_loss": 2.3, "max_batch_loss": 16.0, "chance_accuracy": chance}
    noise = np.sqrt(chance * (1 - chance) / 360)
    just_inside = chance + 1.9 * noise
    assert just_inside > chance + CHANCE_MARGIN  # past the fixed 2 points
    judged = {**stuck, "final_val_accuracy": just_inside}
    assert kinds(diagnose({**judged, "validation_samples": 360}, ONLINE, "completed")) == [
        "at_chance"
    ]
    assert diagnose(judged, ONLINE, "completed") == []  # unknown size: the 2 points alone
    outside = {**stuck, "final_val_accuracy": chance + 2.1 * noise, "validation_samples": 360}
    assert diagnose(outside, ONLINE, "completed") == []


def test_the_registry_gives_an_old_runs_chance_and_validation_size():
    digits = DATASETS["digits"]
    facts = run_health.registry_facts({"dataset": "digits", "validation_split": 0.2})
    assert facts == {
        "chance_accuracy": 1 / digits.num_classes,
        "validation_samples": int(np.ceil(0.2 * digits.size)),
    }
    spiral = run_health.registry_facts(
        {"dataset": "spiral", "validation_split": 0.25, "n_samples": 400}
    )
    assert spiral["validation_samples"] == 100
    assert run_health.registry_facts({"dataset": "diabetes", "validation_split": 0.2}) == {}
    assert run_health.registry_facts({"dataset": "csv", "validation_split": 0.2}) == {}
