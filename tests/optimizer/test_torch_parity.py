"""SGDPlus(convention="torch") against golden trajectories recorded from real PyTorch.

The goldens (`tests/golden/torch_sgd_trajectories.npz`) were made by
`tests/golden/make_torch_golden.py` with `torch.optim.SGD` (and `StepLR`) in float64; this
test never imports torch. Each config is replayed on float64 Keras variables: the gradient
of the same least-squares loss is recomputed with NumPy from the current weights and passed
to `optimizer.apply`, and the weights, the momentum slots and the learning rate are compared
with torch's at every step. In the configs with `b_first_grad_step = k > 0` torch's bias got
no gradient before step `k` (torch skips it); SGDPlus is given no gradient for it either,
by calling `apply` with `W` alone or with a `None` gradient for `b`, and must start `b`'s
buffer at `b = g` at step `k`, as torch does.

Tolerances: the rates (0.25, halved every 5 steps) are powers of two, so Keras's float32
learning-rate variable holds exactly the rate torch uses, and the only differences left
are float64 rounding (summation order of the matmul in the gradient, fused multiply-adds in
torch's or XLA's update). Those are a few ulps per step and the problem is well conditioned
(Hessian eigenvalues 0.33 to 1.54), so they stay tiny (at most 1e-15 of the record's
largest entry, under both backends, when written): `RTOL = 1e-12`, with an absolute floor of
`1e-12` times the largest magnitude in the same record, for entries that pass near zero.
A hyperparameter rounded through float32 (momentum 0.9, weight decay 0.01) is off by 1e-8
to 1e-10 and fails this.
"""

from __future__ import annotations

import json
import pathlib
import warnings

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus

GOLDEN_DIR = pathlib.Path(__file__).resolve().parents[1] / "golden"
GOLDEN = dict(np.load(GOLDEN_DIR / "torch_sgd_trajectories.npz", allow_pickle=False))
CONFIGS = json.loads(str(GOLDEN["configs_json"]))
CONFIGS_BY_NAME = {config["name"]: config for config in CONFIGS}
PARAMS = ("W", "b")

RTOL = 1e-12
ATOL_SCALE = 1e-12
# Keras's velocity equals -lr * torch's buffer while the rate is constant and dampening is 0,
# but the two conventions round differently (lr * g then sum, versus sum then lr * b); the
# slots differ by up to 4e-14 of their largest entry.
KERAS_CONVENTION_RTOL = 1e-10


pytestmark = pytest.mark.usefixtures("jax_float64")


def _learning_rate(config: dict) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The Keras equivalent of the config's `lr` and `StepLR`: `lr * gamma**(t // step_size)`."""
    if config["step_lr"] is None:
        return config["lr"]
    return keras.optimizers.schedules.ExponentialDecay(
        config["lr"],
        decay_steps=config["step_lr"]["step_size"],
        decay_rate=config["step_lr"]["gamma"],
        staircase=True,
    )


def _gradients(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of `0.5 * sum((X @ W + b - Y)**2) / N`, the loss of the goldens."""
    x, y = GOLDEN["X"], GOLDEN["Y"]
    residual = x @ weight + bias - y
    n = x.shape[0]
    return x.T @ residual / n, residual.sum(axis=0) / n


def _numpy(variable: keras.Variable) -> np.ndarray:
    """A copy of the variable's value (no Keras `convert_to_numpy`: it warns on NumPy 2)."""
    return np.asarray(variable.value).copy()


def _run_sgdplus(
    config: dict, convention: str = "torch", missing: str = "subset", jit_compile: bool = True
) -> dict[str, np.ndarray]:
    """Replays one config with SGDPlus; returns records shaped as the goldens.

    Before step `config["b_first_grad_step"]` the bias gets no gradient: `apply` is called
    with `W` alone (`missing="subset"`) or with `None` for `b` (`missing="none"`).
    """
    optimizer = SGDPlus(
        learning_rate=_learning_rate(config),
        momentum=config["momentum"],
        nesterov=config["nesterov"],
        dampening=config["dampening"],
        coupled_weight_decay=config["weight_decay"],
        convention=convention,
        jit_compile=jit_compile,
    )
    variables = [
        keras.Variable(GOLDEN["W0"], dtype="float64", name="W"),
        keras.Variable(GOLDEN["b0"], dtype="float64", name="b"),
    ]
    optimizer.build(variables)
    for variable in variables:
        assert _numpy(variable).dtype == np.float64
    if config["momentum"] == 0:
        assert optimizer.momentums == []
    else:
        assert len(optimizer.momentums) == len(variables)

    def values() -> dict[str, np.ndarray]:
        out = {}
        for i, (key, variable) in enumerate(zip(PARAMS, variables, strict=True)):
            out[key] = _numpy(variable)
            slot = optimizer.momentums[i] if optimizer.momentums else None
            out[f"buf_{key}"] = np.zeros_like(out[key]) if slot is None else _numpy(slot)
        return out

    record: dict[str, list[np.ndarray]] = {"lr": []}
    for key, value in values().items():
        record[key] = [value]
    for key in PARAMS:
        record[f"grad_{key}"] = []
    for step in range(config["steps"]):
        current = values()
        grads = list(_gradients(current["W"], current["b"]))
        bias_has_gradient = step >= config["b_first_grad_step"]
        if not bias_has_gradient:
            grads[1] = np.zeros_like(grads[1])  # torch records no gradient (zeros here)
        record["lr"].append(np.float64(np.asarray(optimizer.current_learning_rate)))
        for key, grad in zip(PARAMS, grads, strict=True):
            record[f"grad_{key}"].append(grad)
        tensors = [keras.ops.convert_to_tensor(g, dtype="float64") for g in grads]
        if bias_has_gradient:
            optimizer.apply(tensors, variables)
        elif missing == "subset":
            optimizer.apply(tensors[:1], variables[:1])
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Gradients do not exist", UserWarning)
                optimizer.apply([tensors[0], None], variables)
        for key, value in values().items():
            record[key].append(value)
    out = {key: np.asarray(value) for key, value in record.items()}
    for key in PARAMS:
        if convention == "torch":
            # Keras slots are torch's buffers; a float64 slot must stay float64.
            assert out[f"buf_{key}"].dtype == np.float64
    return out


def _golden(name: str, key: str) -> np.ndarray:
    return GOLDEN[f"{name}__{key}"]


def _first_mismatch(
    key: str, actual: np.ndarray, expected: np.ndarray, rtol: float
) -> tuple[float, str] | None:
    """`(time, message)` of the first record of `key` that differs, or None.

    Time orders records across keys: weights and buffers at record k (after k steps) come at
    time k, the gradient of step k (computed from the weights at record k) at time k + 0.5.
    """
    assert actual.shape == expected.shape, f"{key}: shape {actual.shape} != {expected.shape}"
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        atol = ATOL_SCALE * float(np.max(np.abs(want)))
        if not np.allclose(got, want, rtol=rtol, atol=atol):
            err = np.abs(got - want)
            worst = tuple(
                int(i) for i in np.unravel_index(np.argmax(err - rtol * np.abs(want)), err.shape)
            )
            if key.startswith("grad_"):
                time, where = index + 0.5, f"the gradient of step {index + 1}"
            else:
                time, where = float(index), f"record {index} (after {index} steps)"
            return time, (
                f"{key} differs from torch at {where}: entry {worst}: SGDPlus "
                f"{float(got[worst])!r}, torch {float(want[worst])!r}, abs err "
                f"{float(err[worst]):.3e}; rtol={rtol}, atol={atol:.3e}\n"
                f"SGDPlus: {got!r}\ntorch:   {want!r}"
            )
    return None


def _assert_trajectories_close(
    name: str, actual: dict[str, np.ndarray], expected: dict[str, np.ndarray], rtol: float = RTOL
) -> None:
    """Fails with the earliest mismatch over all keys of `expected`."""
    mismatches = [_first_mismatch(key, actual[key], expected[key], rtol) for key in expected]
    found = [m for m in mismatches if m is not None]
    if found:
        pytest.fail(f"{name}: {min(found)[1]}")


def test_goldens_are_consistent() -> None:
    """The npz's config table is the readable JSON one, and the goldens came from torch."""
    table = json.loads((GOLDEN_DIR / "torch_sgd_configs.json").read_text())
    assert table == CONFIGS
    assert str(GOLDEN["torch_version"]).startswith("2.13.0")
    for config in CONFIGS:
        steps = config["steps"]
        assert _golden(config["name"], "lr").shape == (steps,)
        assert _golden(config["name"], "W").shape == (steps + 1, *GOLDEN["W0"].shape)
        assert _golden(config["name"], "buf_b").shape == (steps + 1, *GOLDEN["b0"].shape)
    for config in CONFIGS:  # the rates must be exact in Keras's float32 for tight tolerances
        lr = _golden(config["name"], "lr")
        np.testing.assert_array_equal(lr.astype(np.float32).astype(np.float64), lr)


@pytest.mark.parametrize("config", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_matches_torch_sgd(config: dict) -> None:
    name = config["name"]
    actual = _run_sgdplus(config)
    # Same schedule: the rate of every step is exactly torch's.
    np.testing.assert_array_equal(actual["lr"], _golden(name, "lr"), err_msg=f"{name}: lr")
    # Weights, momentum buffers, and the gradients SGDPlus's weights give (so that a mismatch
    # of the gradients alone would not be blamed on the update).
    keys = [f"{prefix}{key}" for key in PARAMS for prefix in ("", "buf_", "grad_")]
    _assert_trajectories_close(name, actual, {key: _golden(name, key) for key in keys})


LATE_BIAS = [c for c in CONFIGS if c["b_first_grad_step"] > 0]


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no-xla"])
@pytest.mark.parametrize("missing", ["subset", "none"])
@pytest.mark.parametrize("config", LATE_BIAS, ids=[c["name"] for c in LATE_BIAS])
def test_a_variable_whose_first_gradient_comes_late_starts_its_buffer_then(
    config: dict, missing: str, jit_compile: bool
) -> None:
    """torch starts a parameter's buffer at `b = g` on its own first step with a gradient,
    not on the optimizer's first step: with dampening the two differ."""
    name, late = config["name"], config["b_first_grad_step"]
    actual = _run_sgdplus(config, missing=missing, jit_compile=jit_compile)
    np.testing.assert_array_equal(actual["lr"], _golden(name, "lr"))
    keys = [f"{prefix}{key}" for key in PARAMS for prefix in ("", "buf_", "grad_")]
    _assert_trajectories_close(name, actual, {key: _golden(name, key) for key in keys})
    # b stood still, with an empty buffer, until its first gradient, which became its buffer
    np.testing.assert_array_equal(actual["b"][: late + 1], [GOLDEN["b0"]] * (late + 1))
    np.testing.assert_array_equal(actual["buf_b"][: late + 1], np.zeros((late + 1, 3)))
    np.testing.assert_array_equal(actual["buf_b"][late + 1], actual["grad_b"][late])


def test_torch_started_the_late_buffer_at_its_first_gradient() -> None:
    """The late-bias golden has teeth: torch's buffer is `g`, not `(1 - tau) * g`, which
    a first step counted for the optimizer as a whole (step 0) would give."""
    (config,) = [c for c in LATE_BIAS if c["name"] == "dampening_late_bias"]
    late = config["b_first_grad_step"]
    first_gradient = _golden(config["name"], "grad_b")[late]
    np.testing.assert_array_equal(_golden(config["name"], "buf_b")[late + 1], first_gradient)
    assert config["dampening"] > 0
    assert np.max(np.abs(first_gradient)) > 1e-3


STEPLR_MOMENTUM = [c for c in CONFIGS if c["step_lr"] is not None and c["momentum"] > 0]


@pytest.mark.parametrize("config", STEPLR_MOMENTUM, ids=[c["name"] for c in STEPLR_MOMENTUM])
def test_keras_convention_differs_from_torch_under_steplr(config: dict) -> None:
    """With a changing rate the default Keras convention is not torch's: the test above
    would catch a convention mix-up."""
    name = config["name"]
    actual = _run_sgdplus(config, convention="keras")
    np.testing.assert_array_equal(actual["lr"], _golden(name, "lr"))
    torch_w = _golden(name, "W")
    relative = np.max(np.abs(actual["W"] - torch_w), axis=(1, 2)) / np.max(np.abs(torch_w))
    assert relative[-1] > 1e-3, f"{name}: keras convention unexpectedly matches torch"
    step_size = config["step_lr"]["step_size"]
    if config["dampening"] == 0:
        # Before the first rate change the two agree (v = -lr * b) ...
        assert np.all(relative[: step_size + 1] < 1e-12), relative[: step_size + 1]
        # ... and the first step at the new rate already differs.
        assert relative[step_size + 1] > 1e-4, relative[step_size + 1]


CONSTANT_RATE = [
    c for c in CONFIGS if c["step_lr"] is None and c["momentum"] > 0 and c["dampening"] == 0
]


@pytest.mark.parametrize("config", CONSTANT_RATE, ids=[c["name"] for c in CONSTANT_RATE])
def test_keras_convention_matches_torch_at_constant_rate(config: dict) -> None:
    """With a constant rate and no dampening both conventions give torch's weights (the
    update rule in keras_sgdplus/sgd_plus.py's docstring and README.md); the slots differ by
    the factor `-lr` (Keras keeps steps, torch gradients)."""
    name = config["name"]
    actual = _run_sgdplus(config, convention="keras")
    expected = {}
    for key in PARAMS:
        expected[key] = _golden(name, key)
        expected[f"buf_{key}"] = -config["lr"] * _golden(name, f"buf_{key}")
    _assert_trajectories_close(name, actual, expected, rtol=KERAS_CONVENTION_RTOL)
