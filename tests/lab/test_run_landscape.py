"""A run's loss landscape (`lab/run_landscape.py`) against independent references: a NumPy
forward pass of the stored model, the closed form of a quadratic loss, and the definitions
of filter normalisation and of the projection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_sgdplus.lab import jobs, run_landscape
from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.run_landscape import LandscapeOptions
from keras_sgdplus.lab.runs import RunStore, WeightPath
from keras_sgdplus.lab.training import load_data, run_training

pytestmark = pytest.mark.usefixtures("fresh_keras_state")


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A small finished run: iris, one hidden layer of 8, momentum."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    config = TrainingConfig(
        dataset="iris",
        model=ModelSpec(depth=1, width=8),
        batch_size=16,
        epochs=4,
        seed=3,
        optimizer=OptimizerSpec(learning_rate=0.1, momentum=0.9),
    )
    run_id = run_training(config, store)
    keras.backend.clear_session()
    return store, run_id, config


def numpy_loss(weights, x, y):
    """Mean sparse cross-entropy of a ReLU MLP with a softmax output, from the formulas."""
    h = np.asarray(x, dtype="float64")
    for kernel, bias in zip(weights[0:-2:2], weights[1:-2:2], strict=True):
        h = np.maximum(h @ kernel + bias, 0.0)
    logits = h @ weights[-2] + weights[-1]
    logits = logits - logits.max(axis=1, keepdims=True)
    log_prob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -np.mean(log_prob[np.arange(len(y)), y])


def test_the_grid_centre_is_the_loss_of_the_final_weights(iris_run):
    """Recomputed in NumPy from the model Keras saved at the run's end, on the whole
    training set (iris has fewer samples than the subset)."""
    store, run_id, config = iris_run
    result, details = run_landscape.compute(store, run_id, LandscapeOptions("random", 5))
    saved = keras.saving.load_model(store.path_of(run_id) / "model.keras")
    weights = [np.asarray(w, dtype="float64") for w in saved.get_weights()]
    keras.backend.clear_session()
    data = load_data(config)
    expected = numpy_loss(weights, data.x_train, data.y_train)
    assert details["train_samples"] == len(data.x_train)
    assert result["alpha"][2] == result["beta"][2] == 0.0
    assert result["loss"][2, 2] == pytest.approx(expected, rel=1e-5)
    assert float(result["center_loss"]) == pytest.approx(expected, rel=1e-5)
    # the line from the initial weights ends at the final ones (t = 1)
    (one,) = np.flatnonzero(np.isclose(result["line_t"], 1.0))
    assert result["line_train"][one] == pytest.approx(expected, rel=1e-5)


def test_each_filter_of_a_direction_has_the_norm_of_the_weights_filter(iris_run):
    """On the directions the run's surface was computed with: each Dense unit (a column of
    the kernel, Keras's last axis) has the norm of the final weights' unit; biases are 0."""
    store, run_id, _ = iris_run
    result, _ = run_landscape.compute(store, run_id, LandscapeOptions("random", 3, seed=9))
    path = store.load_snapshots(run_id)
    shapes = [item["shape"] for item in path.layout]
    final = run_landscape.split(path.vectors[-1], shapes)
    for key in ("direction_1", "direction_2"):
        for w, d in zip(final, run_landscape.split(result[key], shapes), strict=True):
            if w.ndim == 1:
                assert np.all(d == 0)
            else:
                np.testing.assert_allclose(
                    np.linalg.norm(d, axis=0), np.linalg.norm(w, axis=0), rtol=1e-5
                )
    assert not np.allclose(result["direction_1"], result["direction_2"])


def test_filter_normalisation_of_a_convolution_kernel():
    """A Conv2D kernel (kh, kw, in, out): filter j is [..., j], its norm over the other axes."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4))
    bias = rng.normal(size=4)
    d_kernel, d_bias = run_landscape.filter_normalized_direction([kernel, bias], rng)
    for j in range(4):
        assert np.linalg.norm(d_kernel[..., j]) == pytest.approx(np.linalg.norm(kernel[..., j]))
    assert d_bias.shape == (4,)
    assert np.all(d_bias == 0)


def test_the_projected_path_ends_at_the_origin_and_keeps_its_distances(iris_run):
    store, run_id, _ = iris_run
    result, _ = run_landscape.compute(store, run_id, LandscapeOptions("pca", 5))
    path = store.load_snapshots(run_id)
    assert result["path"].shape == (len(path.steps), 2)
    assert np.array_equal(result["path_steps"], path.steps)
    np.testing.assert_allclose(result["path"][-1], [0.0, 0.0], atol=1e-12)
    ratio = result["explained_variance"]
    assert ratio[0] >= ratio[1] > 0
    assert ratio.sum() <= 1 + 1e-9
    # the grid covers the path
    assert result["alpha"].min() < result["path"][:, 0].min()
    assert result["beta"].max() > result["path"][:, 1].max()


def test_a_path_in_a_plane_is_recovered_by_its_principal_components():
    """Snapshots w* + a_i u + b_i v (u, v orthonormal): the PCA plane explains all of the
    variance, and the projected path has the same distances between its points."""
    rng = np.random.default_rng(1)
    u, v = np.linalg.qr(rng.normal(size=(50, 2)))[0].T
    final = rng.normal(size=50)
    a = np.linspace(-3.0, 0.0, 20) ** 2
    b = np.sin(np.linspace(0.0, 4.0, 20)) * (1 - np.linspace(0, 1, 20))
    vectors = final + np.outer(a, u) + np.outer(b, v)
    d1, d2, ratio = run_landscape.pca_directions(vectors, final)
    assert ratio.sum() == pytest.approx(1.0)
    projected = run_landscape.project(vectors, final, d1, d2)
    original = np.stack([a, b], axis=1)
    distances = np.linalg.norm(original[:, None] - original[None], axis=-1)
    recovered = np.linalg.norm(projected[:, None] - projected[None], axis=-1)
    np.testing.assert_allclose(recovered, distances, atol=1e-9)


def test_on_a_quadratic_loss_the_surface_is_the_formula(tmp_path):
    """Linear regression with mean squared error (no hidden layer, `plane`): the loss is
    quadratic in the weights, L(w* + δ) = L* + g·δ + ½ δᵀHδ with g = (2/n) Xᵀr and Hessian
    H = (2/n) XᵀX (X with a column of ones for the bias), exactly."""
    store = RunStore(tmp_path)
    config = TrainingConfig(
        dataset="plane",
        model=ModelSpec(depth=0),
        batch_size=32,
        epochs=2,
        optimizer=OptimizerSpec(learning_rate=0.01),
    )
    run_id = run_training(config, store)
    keras.backend.clear_session()
    result, _ = run_landscape.compute(store, run_id, LandscapeOptions("random", 7, span=2.0))
    data = load_data(config)
    x = np.c_[np.asarray(data.x_train, dtype="float64"), np.ones(len(data.x_train))]
    y = np.asarray(data.y_train, dtype="float64").ravel()
    final = store.load_snapshots(run_id).vectors[-1].astype("float64")  # kernel (2,1), bias
    residual = x @ final - y
    n = len(y)
    gradient, hessian = 2 / n * x.T @ residual, 2 / n * x.T @ x
    d1, d2 = (result[key].astype("float64") for key in ("direction_1", "direction_2"))
    for i, beta in enumerate(result["beta"]):
        for j, alpha in enumerate(result["alpha"]):
            delta = alpha * d1 + beta * d2
            expected = np.mean(residual**2) + gradient @ delta + 0.5 * delta @ hessian @ delta
            assert result["loss"][i, j] == pytest.approx(expected, rel=1e-4)


def test_bad_options_name_the_argument():
    with pytest.raises(ValueError, match=r"`directions` must be one of pca, random. Received"):
        LandscapeOptions("hessian")
    with pytest.raises(ValueError, match=r"`resolution` must be an integer in \[3, 201\]"):
        LandscapeOptions(resolution=1)
    with pytest.raises(ValueError, match=r"`span` must be a positive number. Received: span=0"):
        LandscapeOptions(span=0)
    with pytest.raises(ValueError, match=r"`samples` must be an integer"):
        LandscapeOptions(samples=0)


def test_a_run_without_snapshots_is_refused_with_the_reason(iris_run, tmp_path):
    store, run_id, _ = iris_run
    copy = RunStore(tmp_path)
    writer = copy.create("no snapshots", store.load_meta(run_id)["config"], {})
    writer.update(status="completed")
    writer.close()
    with pytest.raises(ValueError, match="kept no weight snapshots"):
        run_landscape.compute(copy, writer.run_id, LandscapeOptions())


def test_pca_needs_three_snapshots():
    with pytest.raises(ValueError, match="at least 3 weight snapshots"):
        run_landscape.pca_directions(np.zeros((2, 4)), np.zeros(4))


def test_a_stored_landscape_reads_back_with_its_progress(iris_run):
    store, run_id, _ = iris_run
    options = LandscapeOptions("pca", 5)
    result, _ = run_landscape.compute_and_store(store, run_id, options)
    arrays, info = store.load_landscape(run_id, "pca")
    for key, value in result.items():
        np.testing.assert_array_equal(arrays[key], value)
    assert info["options"] == options.to_dict()
    assert store.landscape_progress(run_id, "pca")["state"] == "done"
    shown = run_landscape.as_json(arrays)
    assert set(shown) >= {"alpha", "beta", "loss", "path", "explained_variance", "center_loss"}
    assert len(shown["loss"]) == len(shown["beta"]) == 5
    assert shown["path"][-1] == [0.0, 0.0]


def test_weight_path_rows_are_steps(iris_run):
    store, run_id, _ = iris_run
    path = store.load_snapshots(run_id)
    assert isinstance(path, WeightPath)
    meta = store.load_meta(run_id)
    assert path.steps[0] == 0
    assert path.steps[-1] == meta["summary"]["steps"]


# --- the worker and the command -----------------------------------------------------------------


def wait_for(condition, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def test_a_worker_computes_and_stores_the_landscape_with_progress(iris_run):
    store, run_id, _ = iris_run
    options = LandscapeOptions("random", 9, seed=4)
    # on this process's backend: Keras's cross-entropy clips probabilities on JAX, and
    # works from the softmax's logits on TensorFlow, so far out on the grid they differ
    backend = keras.backend.backend()
    process = jobs.start_landscape(store.root, run_id, options.to_dict(), backend=backend)
    seen = store.landscape_progress(run_id, "random")
    assert seen["state"] in ("computing", "done")  # started: never "nothing yet"
    assert process.wait(180) == 0
    assert store.landscape_progress(run_id, "random")["state"] == "done"
    arrays, info = store.load_landscape(run_id, "random")
    assert info["options"] == options.to_dict()
    expected, _ = run_landscape.compute(store, run_id, options)  # here, the same numbers
    np.testing.assert_allclose(arrays["loss"], expected["loss"], rtol=1e-5)


def test_a_worker_refuses_bad_options_with_their_message(iris_run):
    store, run_id, _ = iris_run
    with pytest.raises(ValueError, match="`resolution` must be an integer"):
        jobs.start_landscape(store.root, run_id, {"resolution": 0})


def test_a_killed_worker_reads_as_interrupted(iris_run):
    """kill -9 while it computes: the lock goes with the process, and readers say so."""
    store, run_id, _ = iris_run
    options = LandscapeOptions("pca", 201, samples=100)  # long enough to be killed in
    process = jobs.start_landscape(store.root, run_id, options.to_dict())
    wait_for(lambda: (store.landscape_progress(run_id, "pca") or {}).get("done", 0) or None)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    assert store.landscape_progress(run_id, "pca")["state"] == "interrupted"


def sgdplus(*args):
    return subprocess.run(
        [sys.executable, "-m", "keras_sgdplus.lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_command_prints_the_surface_on_the_paths_plane_as_json(iris_run):
    store, run_id, _ = iris_run
    done = sgdplus(
        "landscape", run_id, "--runs-dir", str(store.root), "--resolution", "5", "--json"
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    arrays, _ = store.load_landscape(run_id, "pca")  # what it stored, recomputed here
    path = store.load_snapshots(run_id)
    d1, d2, ratio = run_landscape.pca_directions(path.vectors, path.vectors[-1])
    assert shown["explained_variance"] == pytest.approx(ratio.tolist())
    assert len(shown["alpha"]) == len(shown["beta"]) == 5
    assert np.asarray(shown["loss"]).shape == (5, 5)
    np.testing.assert_allclose(np.asarray(shown["loss"]), arrays["loss"], rtol=1e-12)
    assert len(shown["path"]) == len(path.steps)
    assert shown["path"][-1] == [0.0, 0.0]
    offsets = path.vectors[0] - path.vectors[-1]
    first = [float(offsets @ d1), float(offsets @ d2)]
    assert shown["path"][0] == pytest.approx(first, abs=1e-4)  # the same PCA, the same signs


def test_the_command_refuses_bad_input_on_one_line(iris_run):
    store, run_id, _ = iris_run
    bad = sgdplus("landscape", run_id, "--runs-dir", str(store.root), "--span", "-1")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "sgdplus landscape: error: `span` must be a positive number. Received: span=-1.0"
    )
    unknown = sgdplus("landscape", "20260101-000000-abcdef", "--runs-dir", str(store.root))
    assert unknown.returncode == 2
    assert "unknown run id" in unknown.stderr
