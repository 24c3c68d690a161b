"""The learning-rate range test: its arithmetic against independent formulas and hand-made
curves, the steps it trains against a NumPy recomputation, the model put back afterwards,
the `sgdplus lr-find` command, the worker and its stored result, and the chart."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus
from keras_sgdplus.lab import cli, lr_find
from keras_sgdplus.lab.config import OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.engine.order import epoch_order
from keras_sgdplus.lab.lr_find_charts import TITLE, range_test_chart
from keras_sgdplus.lab.lr_find_jobs import LrFindStore, settings_key, start_lr_find
from keras_sgdplus.lab.range_test import find_learning_rate, range_test

# --- the arithmetic -------------------------------------------------------------------------


def test_smoothing_is_the_debiased_moving_average():
    """Against the closed form: sum_k (1 - b) b^(i - k) loss_k / (1 - b^(i + 1))."""
    rng = np.random.default_rng(0)
    losses = rng.uniform(0.5, 3.0, 60)
    for beta in (0.0, 0.5, 0.98):
        expected = [
            sum((1 - beta) * beta ** (i - k) * losses[k] for k in range(i + 1))
            / (1 - beta ** (i + 1))
            for i in range(len(losses))
        ]
        np.testing.assert_allclose(lr_find.smooth(losses, beta), expected, rtol=1e-12)
    # the first value is the first loss itself: the debiasing undoes the zero start
    assert lr_find.smooth([2.5, 1.0], 0.98)[0] == pytest.approx(2.5)


def test_the_swept_rates_follow_the_formula():
    rates = lr_find.swept_rates(1e-7, 10.0, 100)
    assert rates[0] == pytest.approx(1e-7)
    assert rates[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(rates[1:] / rates[:-1], 1e8 ** (1 / 99), rtol=1e-12)


def test_the_test_stops_when_the_smoothed_loss_passes_four_times_its_best():
    losses = [1.0] * 20 + [0.5] * 20 + [100.0] * 10
    smoothed = lr_find.smooth(losses, 0.98)
    first_above = next(i for i in range(1, 50) if smoothed[i] > 4 * min(smoothed[: i + 1]))
    assert lr_find.stop_index(losses, 0.98, 4.0) == first_above + 1  # that step is kept
    assert 40 <= first_above < 50
    assert lr_find.stop_index(losses[:first_above], 0.98, 4.0) is None  # not yet
    assert lr_find.stop_index(losses, 0.98, math.inf) is None  # never


def test_a_non_finite_loss_stops_the_test_without_that_step():
    assert lr_find.stop_index([1.0, 0.9, 0.8, math.nan, 0.5]) == 3
    assert lr_find.stop_index([1.0, math.inf]) == 1
    result = lr_find.make_result([1e-3, 1e-2, 1e-1], [1.0, 0.9, math.nan])
    assert result.loss == [1.0, 0.9]
    assert len(result.learning_rate) == 2


def curve(losses):
    losses = np.asarray(losses, dtype="float64")
    return lr_find.swept_rates(1e-7, 10.0, len(losses)), losses


def test_steepest_is_the_steepest_fall_after_the_first_ten_steps():
    rates, losses = curve(2.0 - np.tanh((np.arange(100) - 40) / 6.0))
    assert lr_find.steepest(rates, losses) == 40
    # a fall in the first ten steps is left out, as Lightning's skip_begin=10
    rates, losses = curve(np.r_[np.linspace(5, 1, 10), np.linspace(1, 0.5, 90)])
    assert lr_find.steepest(rates, losses) >= 10


def test_valley_is_fastais_point_in_the_longest_fall():
    # |i - 60|: after fastai's trim (10 .. 94) the longest decreasing run is trimmed 0 .. 50,
    # so max_end = 50, max_start = 50 - 51 = -1, sections = 17: -1 + 17 + 8 = 24 -> step 34
    rates, losses = curve(np.abs(np.arange(100) - 60.0))
    assert lr_find.valley(rates, losses) == 34
    assert lr_find.suggest(rates, losses, "valley") == pytest.approx(rates[34])


def test_minimum_tenth_is_a_decade_below_the_lowest_loss():
    rates, losses = curve(np.abs(np.arange(100) - 60.0))
    assert lr_find.minimum_tenth(rates, losses) == pytest.approx(rates[60] / 10)
    # the last five steps are left out: a lower loss there does not count
    losses[97] = -5.0
    assert lr_find.minimum_tenth(rates, losses) == pytest.approx(rates[60] / 10)


@pytest.mark.parametrize("n", [100, 57, 23])
def test_the_default_rule_on_a_noisy_range_test_against_a_plain_recomputation(n):
    """The default rule on a noisy curve that falls, flattens and blows up, as a range test
    records it (smoothed, cut at the stop), against a loop over fastai's kept steps
    (n // 10 .. n - 6): the rate of the lowest smoothed loss there, over ten."""
    rng = np.random.default_rng(n)
    rates = lr_find.swept_rates(1e-7, 10.0, n)
    x = np.log10(rates)
    raw = 2.3 / (1 + np.exp(2.0 * (x + 2.5))) + 0.2 + np.exp(6.0 * x) + rng.normal(0, 0.15, n)
    result = lr_find.make_result(rates, raw)
    kept = len(result.smoothed)
    assert kept < n or n < 50  # the blow-up stops the longer tests
    lowest, at = math.inf, -1
    for i in range(kept // 10, kept - 5):
        if result.smoothed[i] < lowest:
            lowest, at = result.smoothed[i], i
    assert result.rule == lr_find.DEFAULT_RULE == "minimum_tenth"
    assert result.suggestion == pytest.approx(rates[at] / 10, rel=1e-12)
    assert result.suggestion == pytest.approx(result.suggestion_by("minimum_tenth"))


def test_every_rule_answers_on_a_curve_that_diverged_early():
    rates, losses = curve([2.0, 1.9, 1.7])
    for rule in lr_find.RULES:
        suggestion = lr_find.suggest(rates, losses, rule)
        assert suggestion is not None
        assert 0 < suggestion <= rates[-1]
    assert lr_find.suggest([], [], "valley") is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps": 1}, "`steps` must be an integer >= 10. Received: steps=1"),
        ({"steps": 20.0}, "Received: steps=20.0"),
        ({"start": 0.0}, "`start` must be a finite number > 0. Received: start=0.0"),
        ({"end": 1e-8}, "`end` must be greater than `start` (1e-07). Received: end=1e-08"),
        ({"end": math.inf}, "Received: end=inf"),
        ({"beta": 1.0}, "`beta` must be a number in [0, 1). Received: beta=1.0"),
        ({"divergence": 1.0}, "Received: divergence=1.0"),
        ({"divergence": math.nan}, "Received: divergence=nan"),
        ({"rule": "best"}, "`rule` must be one of steepest, valley, minimum_tenth"),
    ],
)
def test_bad_options_are_refused_naming_the_argument(options, message):
    arguments = {"start": 1e-7, "end": 10.0, "steps": 100, "beta": 0.98, "divergence": 4.0}
    arguments.update(options)
    with pytest.raises(ValueError, match=re.escape(message)):
        lr_find.check_options(**arguments)


# --- the steps, on a Keras model --------------------------------------------------------------


def softmax_regression(d: int, k: int, optimizer) -> keras.Model:
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(k, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def numpy_losses(w, b, x, y, order, batch_size, rates):
    """Each step's own loss of plain SGD on softmax regression, in float64: the loss of
    the batch before its update, then w -= rate * X^T (p - onehot) / B."""
    w, b = w.astype("float64"), b.astype("float64")
    losses = []
    for i, rate in enumerate(rates):
        batch = order[i * batch_size : (i + 1) * batch_size]
        xb, yb = x[batch].astype("float64"), y[batch]
        logits = xb @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        losses.append(-np.mean(np.log(p[np.arange(len(yb)), yb])))
        delta = p.copy()
        delta[np.arange(len(yb)), yb] -= 1.0
        w = w - rate * xb.T @ delta / len(yb)
        b = b - rate * delta.mean(axis=0)
    return np.array(losses)


def data(n=96, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def test_the_steps_are_each_batchs_own_loss_at_the_swept_rates(fresh_keras_state):
    x, y = data()
    model = softmax_regression(5, 3, SGDPlus(learning_rate=0.01))
    w0, b0 = (v.numpy() for v in model.weights)
    result = range_test(
        model, x, y, batch_size=16, start=1e-2, end=10.0, steps=20, divergence=math.inf, seed=3
    )
    expected_rates = 1e-2 * (1e3) ** (np.arange(20) / 19)
    np.testing.assert_allclose(result.learning_rate, expected_rates, rtol=2e-6)
    # the order of the steps: the lab's order for the seed, epoch after epoch (6 a epoch)
    order = np.concatenate([epoch_order(3, e, len(x))[: 6 * 16] for e in range(4)])
    expected = numpy_losses(w0, b0, x, y, order, 16, expected_rates[:6])
    np.testing.assert_allclose(result.loss[:6], expected, rtol=2e-4)
    # Keras's running mean would differ from the second step on
    running = np.cumsum(expected) / np.arange(1, 7)
    assert not np.allclose(result.loss[1:6], running[1:], rtol=1e-3)
    np.testing.assert_allclose(result.smoothed, lr_find.smooth(result.loss, 0.98), rtol=1e-12)


def test_the_default_sweep_records_the_formulas_rates(fresh_keras_state):
    x, y = data(n=64)
    model = softmax_regression(5, 3, keras.optimizers.SGD(learning_rate=0.05))
    result = range_test(model, x, y, batch_size=8, divergence=math.inf)
    assert len(result.learning_rate) == 100
    expected = 1e-7 * (1e8) ** (np.arange(100) / 99)
    np.testing.assert_allclose(result.learning_rate, expected, rtol=1e-5)
    assert result.suggestion == pytest.approx(lr_find.suggest(expected, result.smoothed), rel=1e-5)


def test_the_model_and_the_optimizer_are_put_back(fresh_keras_state):
    x, y = data()
    optimizer = SGDPlus(learning_rate=0.03, momentum=0.9)
    model = softmax_regression(5, 3, optimizer)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # momentum slots and iterations set
    weights = [v.numpy().copy() for v in model.weights]
    names = [v.path for v in optimizer.variables]
    state = [v.numpy().copy() for v in optimizer.variables]
    assert int(optimizer.iterations.numpy()) == 6
    result = range_test(model, x, y, batch_size=16, steps=30)
    assert len(result.loss) > 10
    for variable, value in zip(model.weights, weights, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert [v.path for v in optimizer.variables] == names
    for variable, value in zip(optimizer.variables, state, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert float(optimizer.learning_rate) == pytest.approx(0.03)
    optimizer.learning_rate = 0.02  # still settable: its own variable is back
    assert float(optimizer.learning_rate) == pytest.approx(0.02)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # and it trains on
    assert int(optimizer.iterations.numpy()) == 12


def test_a_model_that_diverges_is_put_back_too(fresh_keras_state):
    x, _ = data()
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    model.compile(optimizer=SGDPlus(learning_rate=0.01), loss="mse")
    weights = [v.numpy().copy() for v in model.weights]
    y = x.sum(axis=1, keepdims=True)
    result = range_test(model, x, y, batch_size=16, start=1e-3, end=1e6, steps=40)
    assert len(result.loss) < 40  # stopped early: the loss blew up
    assert np.isfinite(result.loss).all()
    for variable, value in zip(model.weights, weights, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1. Received: batch_size=0"),
        ({"steps": 1}, "`steps` must be an integer >= 10. Received: steps=1"),
        ({"y": np.zeros(3)}, "Received: len(x)=96, len(y)=3"),
    ],
)
def test_range_test_refuses_bad_arguments(fresh_keras_state, call, message):
    x, y = data()
    model = softmax_regression(5, 3, SGDPlus())
    arguments = {"x": x, "y": y, **call}
    with pytest.raises(ValueError, match=re.escape(message)):
        range_test(model, **arguments)


def test_range_test_needs_a_compiled_model(fresh_keras_state):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="must be compiled"):
        range_test(model, *data())


def test_a_config_is_tested_with_its_own_model_and_data(fresh_keras_state):
    config = TrainingConfig(dataset="iris", optimizer=OptimizerSpec(learning_rate=0.5), seed=2)
    result = find_learning_rate(config, steps=30)
    again = find_learning_rate(config, steps=30)
    assert result == again  # the same initial weights and batches for the seed
    assert 10 <= len(result.loss) <= 30
    assert result.learning_rate[0] == pytest.approx(1e-7)
    assert result.suggestion is not None
    assert result.learning_rate[0] / 10 <= result.suggestion <= result.learning_rate[-1]


# --- the chart ------------------------------------------------------------------------------


def test_the_chart_draws_both_curves_and_marks_the_suggestion():
    rates, losses = curve(2.0 - np.tanh((np.arange(100) - 40) / 6.0))
    result = lr_find.make_result(rates, losses, divergence=math.inf, rule="steepest")
    spec = range_test_chart(result).to_dict()
    assert spec["title"] == TITLE
    datasets = list(spec["datasets"].values())
    curves = next(d for d in datasets if len(d) == 200)
    assert {row["curve"] for row in curves} == {"loss", "smoothed"}
    (mark,) = (d for d in datasets if len(d) == 1)
    assert mark[0]["learning_rate"] == pytest.approx(result.suggestion)
    assert "steepest" in mark[0]["label"]
    assert any(layer["mark"]["type"] == "rule" for layer in spec["layer"])


# --- the worker and its record ----------------------------------------------------------------


def test_the_settings_key_ignores_what_the_test_does_not_use():
    config = TrainingConfig(dataset="iris")
    same = TrainingConfig(
        dataset="iris", name="x", epochs=7, optimizer=OptimizerSpec(learning_rate=0.3)
    )
    assert settings_key(config) == settings_key(same)
    assert settings_key(config) != settings_key(TrainingConfig(dataset="wine"))
    assert settings_key(config) != settings_key(config, {"steps": 50})
    with pytest.raises(ValueError, match="Received: steps=2"):
        settings_key(config, {"steps": 2})


def test_a_record_left_running_by_a_dead_worker_reads_failed(tmp_path: Path):
    store = LrFindStore(tmp_path)
    store.write("abc123", {"status": "running"})
    assert store.read("abc123")["status"] == "failed"
    held = store.hold("abc123")
    assert held is not None
    assert store.hold("abc123") is None  # one worker a test
    assert store.read("abc123")["status"] == "running"
    held.close()
    assert store.read("abc123")["status"] == "failed"
    assert store.read("nothing") is None
    with pytest.raises(ValueError, match="key"):
        store.read("../x")


def test_the_worker_stores_the_result_of_the_same_test(tmp_path: Path):
    config = TrainingConfig(dataset="iris", seed=1, device="cpu", backend=keras.backend.backend())
    key = start_lr_find(config, tmp_path, {"steps": 30})
    store = LrFindStore(tmp_path)
    deadline = time.monotonic() + 300
    while (record := store.read(key)) and record["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert record is not None
    assert record["status"] == "done", record
    assert sorted(p.name for p in (tmp_path / ".lr_find").iterdir()) == [
        f"{key}.json",
        f"{key}.lock",
    ]
    here = find_learning_rate(config, steps=30)
    stored = lr_find.RangeTestResult.from_dict(record["result"])
    assert len(stored.loss) == len(here.loss)
    np.testing.assert_allclose(stored.loss, here.loss, rtol=1e-4)
    assert stored.suggestion == pytest.approx(here.suggestion, rel=1e-4)


# --- sgdplus lr-find --------------------------------------------------------------------------


def test_sgdplus_lr_find_prints_the_curve_as_json(capsys):
    code = cli.main(["lr-find", "--dataset", "iris", "--steps", "40", "--seed", "1", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"learning_rate", "loss", "smoothed", "suggestion"}
    n = len(printed["learning_rate"])
    assert 10 <= n <= 40
    assert len(printed["loss"]) == n == len(printed["smoothed"])
    assert printed["learning_rate"][0] == pytest.approx(1e-7)
    assert printed["learning_rate"][0] / 10 <= printed["suggestion"] <= 10.0
    np.testing.assert_allclose(printed["smoothed"], lr_find.smooth(printed["loss"]), rtol=1e-12)


def test_sgdplus_lr_find_prints_the_suggestion(capsys):
    assert cli.main(["lr-find", "--dataset", "iris", "--steps", "30", "--rule", "steepest"]) == 0
    out = capsys.readouterr()
    assert float(out.out.strip()) > 0
    assert "the steepest rule suggests" in out.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--steps", "1"], "Received: steps=1"),
        (["--beta", "1.5"], "Received: beta=1.5"),
        (["--learning-rate", "-1"], "learning_rate"),
    ],
)
def test_sgdplus_lr_find_refuses_bad_options(capsys, arguments, message):
    assert cli.main(["lr-find", "--dataset", "iris", *arguments]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


# --- the target: 5 epochs at the suggestion come near the best rate ----------------------------


class _Ignore:
    requested = False

    def put(self, columns) -> None:
        pass

    def flush(self, *, sync: bool = True) -> None:
        pass


def accuracy_after_5_epochs(config: TrainingConfig, rate: float) -> float:
    """Validation accuracy after 5 epochs of plain SGD at `rate` from the seed's initial
    weights, trained by the lab's compiled engine (as benchmarks/lr_find_rules.py does)."""
    from keras_sgdplus.lab import engine
    from keras_sgdplus.lab.engine.order import batch_sizes_of
    from keras_sgdplus.lab.engine.recorder import StepRecorder
    from keras_sgdplus.lab.range_test import model_and_arrays

    config = TrainingConfig(
        dataset=config.dataset, seed=config.seed, optimizer=OptimizerSpec(learning_rate=rate)
    )
    model, arrays, batch_size = model_and_arrays(config)
    ignore = _Ignore()
    sizes = batch_sizes_of(arrays.n_train, batch_size)
    recorder = StepRecorder(ignore, lambda row: None, sizes, ignore)
    path = "jax_chunks" if keras.backend.backend() == "jax" else "tf_chunks"
    engine.train_function(path)(model, arrays, batch_size, range(5), config.seed, recorder)
    logs = model.evaluate(arrays.x_val, arrays.y_val, verbose=0, return_dict=True)
    return float(logs["accuracy"])


@pytest.mark.parametrize(("dataset", "seed"), [("digits", 0), ("breast_cancer", 1)])
def test_five_epochs_at_the_suggestion_come_within_3_points_of_the_best_rate(
    fresh_keras_state, dataset, seed
):
    """The issue's target on two bundled sets (the benchmark holds it for all of them):
    the default rule's rate against a half-decade grid, plain SGD, batch 32."""
    config = TrainingConfig(dataset=dataset, seed=seed, optimizer=OptimizerSpec(momentum=0.0))
    suggestion = find_learning_rate(config).suggestion
    assert suggestion is not None
    at_suggestion = accuracy_after_5_epochs(config, suggestion)
    grid = [accuracy_after_5_epochs(config, rate) for rate in (0.01, 0.03, 0.1, 0.3, 1.0)]
    best = max(*grid, at_suggestion)
    assert best - at_suggestion <= 0.03, (suggestion, at_suggestion, grid)
    assert at_suggestion > min(grid)  # a test that can fail: some rate of the grid is worse
