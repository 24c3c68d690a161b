"""The engine paths: the compiled path of each backend and Keras's own `fit` train the same
run to the same numbers, which a NumPy reference computes independently.

scripts/test.sh runs this file on TensorFlow (compiled path: `tf_chunks`) and on JAX
(`jax_chunks`); `keras_fit` is Keras's plain `fit`, one step per execution.
"""

import math

import keras
import numpy as np
import pytest

from keras_sgdplus.lab import engine
from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, ScheduleSpec, TrainingConfig
from keras_sgdplus.lab.engine import snapshots
from keras_sgdplus.lab.engine.order import epoch_order
from keras_sgdplus.lab.models import build_model
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.training import StopSignal, load_data, run_training

pytestmark = pytest.mark.usefixtures("fresh_keras_state")

COMPILED = {"jax": "jax_chunks", "tensorflow": "tf_chunks"}[keras.backend.backend()]


# --- the order --------------------------------------------------------------------------------


def test_each_epoch_is_a_permutation_fixed_by_seed_and_epoch_alone():
    first = epoch_order(7, 3, 1000)
    assert sorted(first.tolist()) == list(range(1000))
    assert np.array_equal(first, epoch_order(7, 3, 1000))  # nothing else enters
    assert not np.array_equal(first, epoch_order(7, 4, 1000))
    assert not np.array_equal(first, epoch_order(8, 3, 1000))
    # as documented: NumPy's generator seeded with the pair (seed, epoch)
    assert np.array_equal(first, np.random.default_rng([7, 3]).permutation(1000))


# --- a NumPy reference: a one-hidden-layer MLP with softmax, trained by SGD ------------------


def reference_training(weights, x, y, sizes, epochs, seed, rate, momentum, nesterov, trail=None):
    """Per step: the batch's loss before the update, the gradient's global norm; written
    from the formulas (ReLU MLP, mean sparse cross-entropy, Keras's momentum convention:
    v = mu v - lr g; w += v, or w += mu v - lr g with Nesterov). `trail`: a list that gets
    the weights before the first step and after each, flattened in Keras's order."""
    w1, b1, w2, b2 = (np.asarray(w, dtype="float64") for w in weights)
    params = [w1, b1, w2, b2]
    velocity = [np.zeros_like(p) for p in params]
    if trail is not None:
        trail.append(np.concatenate([p.ravel() for p in params]))
    losses, norms = [], []
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        start = 0
        for size in sizes:
            idx = order[start : start + size]
            start += size
            xb, yb = x[idx].astype("float64"), y[idx]
            w1, b1, w2, b2 = params
            pre = xb @ w1 + b1
            hidden = np.maximum(pre, 0.0)
            logits = hidden @ w2 + b2
            logits -= logits.max(axis=1, keepdims=True)
            prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            losses.append(-np.mean(np.log(prob[np.arange(size), yb])))
            d_logits = prob.copy()
            d_logits[np.arange(size), yb] -= 1.0
            d_logits /= size
            g_w2 = hidden.T @ d_logits
            g_b2 = d_logits.sum(axis=0)
            d_pre = (d_logits @ w2.T) * (pre > 0)
            g_w1 = xb.T @ d_pre
            g_b1 = d_pre.sum(axis=0)
            grads = [g_w1, g_b1, g_w2, g_b2]
            norms.append(math.sqrt(sum(float(np.sum(g * g)) for g in grads)))
            for i, g in enumerate(grads):
                velocity[i] = momentum * velocity[i] - rate * g
                step = momentum * velocity[i] - rate * g if nesterov else velocity[i]
                params[i] = params[i] + step
            if trail is not None:
                trail.append(np.concatenate([p.ravel() for p in params]))
    return np.array(losses), np.array(norms)


def iris_config(**optimizer):
    return TrainingConfig(
        dataset="iris",
        model=ModelSpec(depth=1, width=8),
        batch_size=16,
        epochs=3,
        seed=5,
        optimizer=OptimizerSpec(learning_rate=0.05, **optimizer),
    )


def initial_weights(config):
    """The weights a run starts from: the same seed, the same model."""
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    model = build_model(config.model, "multiclass", data.info.input_shape, data.info.num_classes)
    weights = model.get_weights()
    keras.backend.clear_session()
    return data, weights


@pytest.mark.parametrize("path", ["auto", "keras_fit"])
@pytest.mark.parametrize(
    "optimizer",
    [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}],
    ids=["sgd", "momentum", "nesterov"],
)
def test_every_path_trains_as_the_numpy_reference(tmp_path, path, optimizer):
    config = iris_config(**optimizer)
    data, weights = initial_weights(config)
    store = RunStore(tmp_path)
    run = store.load(run_training(config, store, path=path))
    assert run.meta["status"] == "completed"
    assert run.meta["environment"]["engine"] == (COMPILED if path == "auto" else "keras_fit")
    n = len(data.x_train)
    sizes = [16] * (n // 16) + ([n % 16] if n % 16 else [])
    losses, norms = reference_training(
        weights,
        data.x_train,
        data.y_train,
        sizes,
        3,
        5,
        0.05,
        optimizer.get("momentum", 0.0),
        optimizer.get("nesterov", False),
    )
    batches = run.batches
    assert list(batches.batch_size) == sizes * 3
    np.testing.assert_allclose(batches.loss, losses, rtol=2e-5)
    np.testing.assert_array_equal(batches.learning_rate, np.float32(0.05))
    if path == "keras_fit":
        assert batches.grad_norm.isna().all()  # Keras's fit does not show the gradient
    else:
        np.testing.assert_allclose(batches.grad_norm, norms, rtol=2e-5)
    for epoch, group in batches.groupby("epoch"):
        weighted = np.average(group.loss, weights=group.batch_size)
        assert run.epochs.loss[epoch] == pytest.approx(weighted, rel=1e-6)


def momentum_trail(data, weights):
    """The NumPy reference's weights after each step of `iris_config(momentum=0.9)`'s run
    (the initial weights first), and its number of steps."""
    n = len(data.x_train)
    sizes = [16] * (n // 16) + ([n % 16] if n % 16 else [])
    trail: list = []
    reference_training(weights, data.x_train, data.y_train, sizes, 3, 5, 0.05, 0.9, False, trail)
    return np.stack(trail), 3 * len(sizes)


@pytest.mark.parametrize("path", ["auto", "keras_fit"])
def test_weight_snapshots_hold_the_weights_after_their_steps(tmp_path, path, monkeypatch):
    """The ball's path (`engine.snapshots`): at most MOST_SNAPSHOTS copies, spread evenly
    from the initial weights to the last step, each equal to the NumPy reference's weights
    after that many steps."""
    monkeypatch.setattr(snapshots, "MOST_SNAPSHOTS", 7)
    config = iris_config(momentum=0.9)
    data, weights = initial_weights(config)
    store = RunStore(tmp_path)
    run_id = run_training(config, store, path=path)
    trail, total = momentum_trail(data, weights)
    kept = store.load_snapshots(run_id)
    assert kept.steps.tolist() == sorted({round(s) for s in np.linspace(0, total, 7)})
    assert [item["shape"] for item in kept.layout] == [list(w.shape) for w in weights]
    np.testing.assert_allclose(kept.vectors[0], trail[0], rtol=0, atol=0)  # as initialised
    np.testing.assert_allclose(kept.vectors, trail[kept.steps], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("buffer_rows", [2, 200])
def test_a_chunk_keeps_the_snapshots_inside_it(tmp_path, monkeypatch, buffer_rows):
    """Snapshots at every other step, kept inside the compiled chunks: in a buffer that
    holds them all, or in one of two rows (the chunk ends at the second), each equal to
    the NumPy reference's weights after that many steps."""
    monkeypatch.setattr(snapshots, "MOST_SNAPSHOTS", 13)
    config = iris_config(momentum=0.9)
    data, weights = initial_weights(config)
    size = sum(w.size for w in weights)
    monkeypatch.setattr(snapshots, "SNAPSHOT_BUFFER_BYTES", buffer_rows * 4 * size)
    assert snapshots.buffer_rows(size) == min(buffer_rows, snapshots.MOST_SNAPSHOTS)
    store = RunStore(tmp_path)
    run_id = run_training(config, store)
    trail, total = momentum_trail(data, weights)
    kept = store.load_snapshots(run_id)
    assert kept.steps.tolist() == sorted({round(s) for s in np.linspace(0, total, 13)})
    np.testing.assert_allclose(kept.vectors, trail[kept.steps], rtol=1e-4, atol=1e-6)


def test_a_resumed_run_keeps_the_snapshots_of_an_uninterrupted_one(tmp_path):
    """Stopped mid-run and resumed, a run keeps the snapshots an uninterrupted run keeps:
    those after the checkpoint are taken again, none twice."""
    config = iris_config(momentum=0.9)
    store = RunStore(tmp_path)
    whole = store.load_snapshots(run_training(config, store))
    keras.backend.clear_session()
    stop = StopSignal()
    calls = []

    def stop_in_second_epoch(row):
        calls.append(row)
        if len(calls) == 2:
            stop.request()

    part = run_training(config, store, stop=stop, progress=stop_in_second_epoch)
    assert store.load_meta(part)["status"] == "stopped"
    keras.backend.clear_session()
    run_training(config, store, resume=part)
    resumed = store.load_snapshots(part)
    np.testing.assert_array_equal(resumed.steps, whole.steps)
    np.testing.assert_allclose(resumed.vectors, whole.vectors, rtol=1e-6, atol=1e-7)


def test_compiled_path_and_plain_fit_see_the_same_batches_and_losses(tmp_path):
    """The same run through the compiled path and through Keras's plain `fit`: every
    batch's loss, and the epochs' metrics."""
    store = RunStore(tmp_path)
    config = TrainingConfig(
        dataset="digits",
        model=ModelSpec(depth=2, width=32),
        batch_size=32,
        epochs=2,
        optimizer=OptimizerSpec(learning_rate=0.05, momentum=0.9),
    )
    fast = store.load(run_training(config, store))
    keras.backend.clear_session()
    plain = store.load(run_training(config, store, path="keras_fit"))
    assert fast.meta["environment"]["engine"] == COMPILED
    assert len(fast.batches) == len(plain.batches) == 2 * math.ceil(1437 / 32)
    np.testing.assert_allclose(fast.batches.loss, plain.batches.loss, rtol=1e-5)
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(fast.epochs[column], plain.epochs[column], rtol=1e-5)


IMAGES = "images"  # a small NPZ of 12x12 one-channel images the test writes


@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": OptimizerSpec(name="adam", learning_rate=0.01)},
        {"optimizer": OptimizerSpec(name="adamw", learning_rate=0.01)},
        {"optimizer": OptimizerSpec(name="rmsprop", learning_rate=0.01)},
        {
            "optimizer": OptimizerSpec(
                momentum=0.9,
                nesterov=True,
                convention="torch",
                schedule=ScheduleSpec(name="step", every_steps=7),
            )
        },
        {"optimizer": OptimizerSpec(schedule=ScheduleSpec(name="cosine", warmup_steps=5))},
        {"dataset": IMAGES, "model": ModelSpec(kind="cnn", width=8)},
        {"dataset": "diabetes", "model": ModelSpec(loss="mae")},
        {"dataset": "breast_cancer", "model": ModelSpec(loss="mse"), "batch_size": 7},
        {"model": ModelSpec(loss="categorical_crossentropy", activation="gelu")},
    ],
    ids=[
        "adam",
        "adamw",
        "rmsprop",
        "nesterov-torch-step",
        "cosine-warmup",
        "cnn",
        "regression-mae",
        "binary-mse",
        "one-hot-gelu",
    ],
)
def test_compiled_path_takes_what_plain_fit_takes(tmp_path, settings):
    """Keras's other optimizers, the schedules, a CNN, every task and loss: the compiled path
    gives every batch the loss Keras's plain `fit` gives it, and the same epoch metrics."""
    settings = dict(settings)
    if settings.get("dataset") == IMAGES:
        rng = np.random.default_rng(0)
        path = tmp_path / "images.npz"
        np.savez(path, x=rng.random((120, 12, 12, 1)), y=rng.integers(0, 3, 120))
        settings.update(dataset="npz", data_path=str(path))
    config = TrainingConfig(**{"dataset": "iris", "batch_size": 16, "epochs": 3, **settings})
    store = RunStore(tmp_path / "runs")
    fast = store.load(run_training(config, store))
    keras.backend.clear_session()
    plain = store.load(run_training(config, store, path="keras_fit"))
    assert fast.meta["environment"]["engine"] == COMPILED
    assert fast.meta["status"] == plain.meta["status"] == "completed"
    assert len(fast.batches) == len(plain.batches) > 3
    np.testing.assert_allclose(fast.batches.loss, plain.batches.loss, rtol=1e-5)
    np.testing.assert_allclose(fast.batches.learning_rate, plain.batches.learning_rate, rtol=1e-5)
    assert list(fast.epochs.columns) == list(plain.epochs.columns)
    for column in fast.epochs.columns.drop(["epoch", "wall_time"], errors="ignore"):
        np.testing.assert_allclose(fast.epochs[column], plain.epochs[column], rtol=1e-5)


def test_full_batch_takes_one_step_an_epoch_on_the_compiled_path(tmp_path):
    store = RunStore(tmp_path)
    config = iris_config()
    config = TrainingConfig(**{**config.__dict__, "batch_size": None, "epochs": 4})
    data, weights = initial_weights(config)
    run = store.load(run_training(config, store))
    n = len(data.x_train)
    losses, norms = reference_training(weights, data.x_train, data.y_train, [n], 4, 5, 0.05, 0, 0)
    np.testing.assert_allclose(run.batches.loss, losses, rtol=2e-5)
    np.testing.assert_allclose(run.batches.grad_norm, norms, rtol=2e-5)


def test_recorded_rate_follows_the_decay_formula_on_the_compiled_path(tmp_path):
    """lr_t = lr / (1 + decay t) in float32, the rate SGDPlus used for step t."""
    store = RunStore(tmp_path)
    spec = OptimizerSpec(learning_rate=0.1, schedule=ScheduleSpec("time_decay", decay=0.07))
    config = TrainingConfig(dataset="iris", batch_size=8, epochs=2, optimizer=spec)
    batches = store.load(run_training(config, store)).batches
    t = np.arange(len(batches), dtype="float32")
    expected = np.float32(0.1) / (np.float32(1) + np.float32(0.07) * t)
    np.testing.assert_allclose(batches.learning_rate, expected, rtol=2.0**-22)


def test_a_stop_ends_the_compiled_path_after_the_chunk_in_progress(tmp_path):
    store = RunStore(tmp_path)
    stop = StopSignal()
    config = TrainingConfig(dataset="digits", batch_size=8, epochs=50)
    run = store.load(run_training(config, store, stop, progress=lambda row: stop.request()))
    assert run.meta["status"] == "stopped"
    assert set(run.batches.epoch) <= {0, 1}
    assert len(run.epochs) <= 2
    assert list(run.batches.step) == list(range(len(run.batches)))


def test_a_non_finite_loss_is_the_last_step_recorded(tmp_path):
    store = RunStore(tmp_path)
    config = TrainingConfig(
        dataset="diabetes",
        batch_size=4,
        epochs=5,
        standardize=False,
        optimizer=OptimizerSpec(learning_rate=1e6),
    )
    run = store.load(run_training(config, store))
    assert run.meta["status"] == "diverged"
    losses = run.batches.loss.to_numpy()
    assert not np.isfinite(losses[-1])
    assert np.isfinite(losses[:-1]).all()


def test_a_backend_other_than_the_running_one_is_refused_before_the_run_exists(tmp_path):
    other = "tensorflow" if keras.backend.backend() == "jax" else "jax"
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match=f"`backend` {other}"):
        run_training(TrainingConfig(dataset="iris", backend=other), store)
    assert store.list_runs() == []


def test_paths_refuse_what_they_cannot_take():
    assert engine.choose_path("auto", "jax", distributed=False) == "jax_chunks"
    assert engine.choose_path("auto", "tensorflow", distributed=True) == "keras_fit"
    with pytest.raises(ValueError, match="Received: path='jax_chunks'"):
        engine.choose_path("jax_chunks", "tensorflow", distributed=False)
    with pytest.raises(ValueError, match="Received: path='fast'"):
        engine.choose_path("fast", "jax", distributed=False)


def test_a_large_model_keeps_fewer_snapshots_within_the_byte_bound():
    """At most SNAPSHOT_BYTES of snapshots a run, at least three (a plane), at most 200."""
    assert snapshots.most_snapshots(8_970) == 200  # the default MLP on digits
    big = 200_000  # the CNN on MNIST
    assert snapshots.most_snapshots(big) == snapshots.SNAPSHOT_BYTES // (4 * big)
    assert snapshots.most_snapshots(big) * 4 * big <= snapshots.SNAPSHOT_BYTES
    assert snapshots.most_snapshots(10**9) == 3
    steps = snapshots.snapshot_steps(0, 1000, 83)
    assert len(steps) == 83
    assert steps[0] == 0
    assert steps[-1] == 1000


@pytest.mark.parametrize("n_val", [300, 2600])
def test_an_epochs_end_gives_what_keras_evaluate_and_get_metrics_result_give(n_val):
    """The compiled epoch's end: the training metrics as `model.get_metrics_result()` reads
    them after the epoch, and the validation logs as Keras's own `evaluate` computes them
    on the same batches: one batch, and two full batches of 1,024 and a smaller last one."""
    import importlib

    from keras_sgdplus import SGDPlus
    from keras_sgdplus.lab.engine.common import TrainingArrays, build_compiled_parts

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200 + n_val, 8)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, len(x)), 3)
    arrays = TrainingArrays(x[:200], y[:200], x[200:], y[200:])
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
    )
    model.compile(
        optimizer=SGDPlus(0.1, momentum=0.9),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    build_compiled_parts(model, arrays)
    programs = importlib.import_module(f"keras_sgdplus.lab.engine.{COMPILED}")
    chunks = next(getattr(programs, n) for n in ("JaxChunks", "TfChunks") if hasattr(programs, n))
    run = chunks(model, arrays, 16)
    for epoch in range(2):  # the second epoch starts from the metrics the first left
        run.begin_epoch(epoch_order(0, epoch, 200))
        run.run_chunk(0, run.full_steps, np.full(run.snapshot_rows, -1, dtype="int32"))
        # the references: the training metrics where the model holds them (on TensorFlow
        # its variables, updated by each chunk; on JAX the arrays the programs carry, handed
        # to the variables at the epoch's end)
        if keras.backend.backend() == "tensorflow":
            expected_train = {k: float(v) for k, v in model.get_metrics_result().items()}
        train, validation = run.end_epoch()
        if keras.backend.backend() == "jax":
            expected_train = {k: float(v) for k, v in model.get_metrics_result().items()}
        else:  # the next epoch starts from reset metrics
            assert all(float(v) == 0 for v in model.get_metrics_result().values())
        expected_validation = model.evaluate(
            arrays.x_val, arrays.y_val, batch_size=1024, verbose=0, return_dict=True
        )
        assert list(train) == list(expected_train)
        for key, value in expected_train.items():
            np.testing.assert_allclose(train[key], value, rtol=1e-6, err_msg=key)
        assert sorted(validation) == sorted(expected_validation) == ["accuracy", "loss"]
        for key, value in expected_validation.items():
            np.testing.assert_allclose(validation[key], value, rtol=1e-6, err_msg=key)
        model.reset_metrics()  # evaluate left the validation's in them
        assert train["accuracy"] > 0
