"""Records golden `torch.optim.SGD` trajectories for `tests/optimizer/test_torch_parity.py`.

For every config of `CONFIGS` this runs `torch.optim.SGD` (optionally under
`torch.optim.lr_scheduler.StepLR`, stepped after every `optimizer.step()`) on one fixed
least-squares problem in float64, and records per step the parameters, the gradient torch
computed, the momentum buffer (`optimizer.state[p]["momentum_buffer"]`, zeros before the
parameter's first step and for plain SGD, which keeps none) and the learning rate the step
used.

In the configs with `b_first_grad_step = k > 0` the bias `b` gets no gradient before step
`k`: the loss sees `b.detach()`, so `b.grad` stays None and `torch.optim.SGD` skips `b`
(its recorded gradient is zeros there). Its momentum buffer starts at `b = g` at step `k`,
when the first gradient arrives; with dampening that differs from `mu * 0 + (1 - tau) * g`.

The problem, with data drawn once from a fixed NumPy seed and stored in the output:
```
R = X @ W + b - Y                     X: (N, D), Y: (N, K), W: (D, K), b: (K,)
loss = 0.5 * sum(R**2) / N
dloss/dW = X.T @ R / N,   dloss/db = sum(R, axis=0) / N
```
The Keras side recomputes the gradient with that formula from its own weights, so it
never needs torch.

Learning rates (0.25), the StepLR gamma (0.5), `N` (16) are powers of two, so the rate is
the same number in float32 (where Keras keeps it) and float64 (where torch keeps it).

Outputs, both committed:
- `torch_sgd_trajectories.npz`: numeric and unicode arrays only (loads with
  `allow_pickle=False`). Keys: `X`, `Y`, `W0`, `b0`, `torch_version`, `numpy_version`,
  `configs_json`, and per config `<name>__lr` (steps,), `<name>__{W,b}` (steps+1, ...)
  with the initial value first, `<name>__grad_{W,b}` (steps, ...) and
  `<name>__buf_{W,b}` (steps+1, ...), zeros first. Regenerating leaves the arrays of the
  earlier configs unchanged (same seed, same data, same torch).
- `torch_sgd_configs.json`: the same config table as `configs_json`, for reading.

Regenerate (torch is deliberately not in the project's virtualenv):
```
python3.11 -m venv /tmp/torchenv
/tmp/torchenv/bin/pip install torch==2.13.0 numpy
/tmp/torchenv/bin/python tests/golden/make_torch_golden.py
```
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
OUTPUT = HERE / "torch_sgd_trajectories.npz"
CONFIG_OUTPUT = HERE / "torch_sgd_configs.json"

SEED = 20240601
N, D, K = 16, 4, 3
STEPS = 40
LR = 0.25
STEP_LR = {"step_size": 5, "gamma": 0.5}

_BASE = {
    "lr": LR,
    "momentum": 0.0,
    "nesterov": False,
    "dampening": 0.0,
    "weight_decay": 0.0,
    "step_lr": None,
    "steps": STEPS,
    "b_first_grad_step": 0,
}
LATE = 7  # the step at which `b` gets its first gradient in the "late_bias" configs


def _config(name: str, **overrides: object) -> dict:
    return {"name": name, **_BASE, **overrides}


CONFIGS = [
    _config("plain"),
    _config("plain_weight_decay", weight_decay=0.01),
    _config("momentum", momentum=0.9),
    _config("nesterov", momentum=0.9, nesterov=True),
    _config("dampening", momentum=0.9, dampening=0.5),
    _config("momentum_weight_decay", momentum=0.9, weight_decay=0.01),
    _config("nesterov_weight_decay", momentum=0.9, nesterov=True, weight_decay=0.01),
    _config("plain_steplr", step_lr=STEP_LR),
    _config("momentum_steplr", momentum=0.9, step_lr=STEP_LR),
    _config("nesterov_steplr", momentum=0.9, nesterov=True, step_lr=STEP_LR),
    _config("dampening_steplr", momentum=0.9, dampening=0.5, step_lr=STEP_LR),
    _config(
        "nesterov_weight_decay_steplr",
        momentum=0.9,
        nesterov=True,
        weight_decay=0.01,
        step_lr=STEP_LR,
    ),
    _config("dampening_late_bias", momentum=0.9, dampening=0.5, b_first_grad_step=LATE),
    _config(
        "dampening_late_bias_steplr",
        momentum=0.9,
        dampening=0.5,
        step_lr=STEP_LR,
        b_first_grad_step=LATE,
    ),
    _config("nesterov_late_bias", momentum=0.9, nesterov=True, b_first_grad_step=LATE),
]


def make_problem() -> dict[str, np.ndarray]:
    """The fixed data and initial weights, float64, from `SEED`."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N, D))
    w_true = rng.normal(size=(D, K))
    b_true = rng.normal(size=(K,))
    y = x @ w_true + b_true + 0.1 * rng.normal(size=(N, K))
    return {
        "X": x,
        "Y": y,
        "W0": rng.normal(size=(D, K)),
        "b0": rng.normal(size=(K,)),
    }


def run_config(config: dict, problem: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs `torch.optim.SGD` for one config; returns the per-step records."""
    x = torch.tensor(problem["X"], dtype=torch.float64)
    y = torch.tensor(problem["Y"], dtype=torch.float64)
    w = torch.tensor(problem["W0"], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(problem["b0"], dtype=torch.float64, requires_grad=True)
    params = {"W": w, "b": b}
    optimizer = torch.optim.SGD(
        [w, b],
        lr=config["lr"],
        momentum=config["momentum"],
        dampening=config["dampening"],
        weight_decay=config["weight_decay"],
        nesterov=config["nesterov"],
    )
    scheduler = None
    if config["step_lr"] is not None:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, **config["step_lr"])

    def buffer(p: torch.Tensor) -> np.ndarray:
        value = optimizer.state.get(p, {}).get("momentum_buffer")
        if value is None:
            return np.zeros(tuple(p.shape), dtype=np.float64)
        return value.detach().numpy().copy()

    record: dict[str, list[np.ndarray]] = {"lr": []}
    for key, p in params.items():
        record[key] = [p.detach().numpy().copy()]
        record[f"grad_{key}"] = []
        record[f"buf_{key}"] = [buffer(p)]
    for step in range(config["steps"]):
        optimizer.zero_grad()
        bias = b if step >= config["b_first_grad_step"] else b.detach()
        residual = x @ w + bias - y
        loss = 0.5 * (residual**2).sum() / N
        loss.backward()
        record["lr"].append(np.float64(optimizer.param_groups[0]["lr"]))
        for key, p in params.items():
            grad = np.zeros(tuple(p.shape)) if p.grad is None else p.grad.detach().numpy()
            record[f"grad_{key}"].append(grad.copy())
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        for key, p in params.items():
            record[key].append(p.detach().numpy().copy())
            record[f"buf_{key}"].append(buffer(p))
    return {key: np.asarray(values, dtype=np.float64) for key, values in record.items()}


def main() -> None:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    problem = make_problem()
    arrays: dict[str, np.ndarray] = dict(problem)
    arrays["torch_version"] = np.array(torch.__version__)
    arrays["numpy_version"] = np.array(np.__version__)
    arrays["configs_json"] = np.array(json.dumps(CONFIGS, sort_keys=True))
    for config in CONFIGS:
        for key, value in run_config(config, problem).items():
            arrays[f"{config['name']}__{key}"] = value
    np.savez_compressed(OUTPUT, **arrays)
    CONFIG_OUTPUT.write_text(json.dumps(CONFIGS, indent=2, sort_keys=True) + "\n")
    print(
        f"torch {torch.__version__}: wrote {len(CONFIGS)} configs to {OUTPUT} and {CONFIG_OUTPUT}"
    )


if __name__ == "__main__":
    main()
