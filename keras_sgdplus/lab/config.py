"""A run's configuration: the one place raw settings become a value the rest of the lab trusts.

Settings enter at three places, and each turns them into a `TrainingConfig` here:

- the `sgdplus train` arguments (`lab/cli.py` builds the specs from them),
- the Train page's widgets (`dashboard/app_pages/train.py` hands their values to
  `TrainingConfig.from_dict`),
- a stored run (`RunStore` parses the `config` of each `meta.json` it reads with
  `TrainingConfig.from_dict`; a config that does not parse makes the run unreadable).

Every spec is a frozen dataclass whose `__post_init__` checks its fields, so a `TrainingConfig`
that exists holds only values in range: `run_training`, `build_model`, `make_optimizer`, the
schedules and the worker use it without checking it again. A bad field raises `ValueError` in
Keras's style, naming the argument and the value: ``"`momentum` must be in [0, 1]. Received:
momentum=1.5"``.

One check needs the data as well as the config: whether the model fits it (a CNN needs images,
the loss must fit the task). `check_model_fits` does it, called by the page and the CLI, which
know the dataset's shape and task before a run starts. What only the machine can tell (a GPU
for device "gpu", the files of a csv / npz run) is found when the run starts, and the run's
name is checked by the run store, which owns names.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keras_sgdplus.lab import datasets
from keras_sgdplus.validation import CONVENTIONS  # SGDPlus's own list

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "CONVENTIONS",
    "DEVICES",
    "LOSSES",
    "LOSS_NAMES",
    "MODEL_KINDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "USER_FILE_KINDS",
    "ModelSpec",
    "OptimizerSpec",
    "ScheduleSpec",
    "TrainingConfig",
    "check_model_fits",
    "parse_batch_size",
]

MODEL_KINDS = ("auto", "mlp", "cnn")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu")
LOSSES = {
    "multiclass": ("sparse_categorical_crossentropy", "categorical_crossentropy"),
    "binary": ("binary_crossentropy", "mse"),
    "regression": ("mse", "mae"),
}
OPTIMIZERS = {
    "sgdplus": "SGDPlus: plain SGD, momentum or Nesterov, in the Keras or torch convention",
    "adam": "Keras Adam (baseline)",
    "adamw": "Keras AdamW (baseline)",
    "rmsprop": "Keras RMSprop (baseline)",
}
SCHEDULES = {
    "constant": "the same rate at every step",
    "time_decay": "tf.keras's decay=: lr / (1 + decay * t)",
    "step": "multiplied by `drop` every `every_steps` steps",
    "exponential": "lr * rate ** (t / every_steps), smoothly",
    "cosine": "linear warm-up, then cosine decay to zero at the last step",
}
LOSS_NAMES = tuple(dict.fromkeys(loss for losses in LOSSES.values() for loss in losses))
DEVICES = ("auto", "cpu", "gpu")
BACKENDS = ("auto", "jax", "tensorflow")  # auto: the fastest installed (lab/accelerators.py)
USER_FILE_KINDS = ("csv", "npz")  # the `dataset` of a run on the user's own file
MAX_SEED = 2**32 - 1


# --- the checks: each returns the value it accepts, or raises ValueError naming the argument ---


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}"


def _integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    """An int (NumPy ints too, bools not) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer. {_received(name, value)}")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"`{name}` must be {bound}. {_received(name, value)}")
    return number


def _number(
    name: str,
    value: Any,
    low: float,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite float (ints and NumPy numbers too, bools not) in the interval; NaN fails."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a number. {_received(name, value)}")
    number = float(value)
    above = number > low if low_open else number >= low
    below = math.isfinite(number) and (
        high is None or (number < high if high_open else number <= high)
    )
    if not (above and below):  # written so that NaN fails
        if high is None:
            bound = f"a finite number {'>' if low_open else '>='} {low:g}"
        else:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must be {bound}. {_received(name, value)}")
    return number


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False. {_received(name, value)}")
    return value


def _one_of(name: str, value: Any, choices: Any) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(choices)}. {_received(name, value)}")
    return value


def _text(name: str, value: Any, *, optional: bool = False) -> Any:
    """Text (a path-like becomes its text); None too where `optional`."""
    if value is None and optional:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be text. {_received(name, value)}")
    return value


def _set(spec: Any, **values: Any) -> None:
    """Store the accepted values on a frozen dataclass (from `__post_init__`)."""
    for key, value in values.items():
        object.__setattr__(spec, key, value)


# --- the specs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """A learning-rate schedule by name with its parameters, as a run's config stores it."""

    name: str = "constant"  # one of SCHEDULES
    decay: float = 1e-3  # time_decay: >= 0
    drop: float = 0.5  # step: in (0, 1]
    every_steps: int = 100  # step, exponential: >= 1
    rate: float = 0.5  # exponential: in (0, 1]
    warmup_steps: int = 0  # cosine: >= 0

    def __post_init__(self) -> None:
        _set(
            self,
            name=_one_of("schedule", self.name, SCHEDULES),
            decay=_number("decay", self.decay, 0),
            drop=_number("drop", self.drop, 0, 1, low_open=True),
            every_steps=_integer("every_steps", self.every_steps, 1),
            rate=_number("rate", self.rate, 0, 1, low_open=True),
            warmup_steps=_integer("warmup_steps", self.warmup_steps, 0),
        )


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer by name with its hyperparameters, as a run's config stores it."""

    name: str = "sgdplus"  # one of OPTIMIZERS
    learning_rate: float = 0.01  # finite, >= 0
    momentum: float = 0.0  # in [0, 1]; SGDPlus only
    nesterov: bool = False  # SGDPlus only
    convention: str = "keras"  # one of CONVENTIONS; SGDPlus only
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, ScheduleSpec):
            raise ValueError(
                f"`schedule` must be a ScheduleSpec. {_received('schedule', self.schedule)}"
            )
        _set(
            self,
            name=_one_of("optimizer", self.name, OPTIMIZERS),
            learning_rate=_number("learning_rate", self.learning_rate, 0),
            momentum=_number("momentum", self.momentum, 0, 1),
            nesterov=_flag("nesterov", self.nesterov),
            convention=_one_of("convention", self.convention, CONVENTIONS),
        )


@dataclass(frozen=True)
class ModelSpec:
    """The architecture: `kind` "auto" picks a CNN for images, an MLP otherwise."""

    kind: str = "auto"  # one of MODEL_KINDS
    depth: int = 2  # hidden Dense layers (MLP) or conv blocks (CNN): in [0, 8]
    width: int = 64  # units per Dense layer (the CNN's first conv has width / 2 filters)
    activation: str = "relu"  # one of ACTIVATIONS
    loss: str = "auto"  # "auto" or one of LOSSES[task] (`check_model_fits` knows the task)

    def __post_init__(self) -> None:
        _set(
            self,
            kind=_one_of("model", self.kind, MODEL_KINDS),
            depth=_integer("depth", self.depth, 0, 8),
            width=_integer("width", self.width, 1, 4096),
            activation=_one_of("activation", self.activation, ACTIVATIONS),
            loss=_one_of("loss", self.loss, ("auto", *LOSS_NAMES)),
        )


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that defines a run; stored as the run's config (`to_dict`, `from_dict`)."""

    dataset: str = "digits"  # a name in datasets.DATASETS, or csv / npz (the user's file)
    data_path: str | None = None  # the CSV or NPZ file of dataset "csv" / "npz"
    target_column: str | None = None  # CSV only
    validation_split: float = 0.2  # in (0, 1)
    standardize: bool = True
    noise: float = 0.1  # generated 2-D sets: >= 0
    n_samples: int | None = None  # generated 2-D sets: None (the default) or >= 2
    model: ModelSpec = field(default_factory=ModelSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    batch_size: int | None = 32  # None: full batch (vanilla gradient descent); 1: online
    epochs: int = 10  # >= 1
    seed: int = 0  # in [0, 2**32 - 1]
    device: str = "auto"  # one of DEVICES
    backend: str = "auto"  # one of BACKENDS: the Keras backend the run trains on
    name: str = ""  # "": a name made of the settings (`training.default_name`)
    sweep_id: str = ""  # the sweep this run belongs to (`lab/sweeps.py`); "" for none
    sweep_name: str = ""  # that sweep's name

    def __post_init__(self) -> None:
        for key, kind in (("model", ModelSpec), ("optimizer", OptimizerSpec)):
            value = getattr(self, key)
            if not isinstance(value, kind):
                raise ValueError(f"`{key}` must be a {kind.__name__}. {_received(key, value)}")
        dataset = _one_of("dataset", self.dataset, (*datasets.DATASETS, *USER_FILE_KINDS))
        data_path = _text("data_path", self.data_path, optional=True)
        target_column = _text("target_column", self.target_column, optional=True)
        if dataset in USER_FILE_KINDS and not data_path:
            raise ValueError(
                f"`data_path` is needed for dataset {dataset}. {_received('data_path', data_path)}"
            )
        if dataset == "csv" and not target_column:
            raise ValueError(
                f"`target_column` is needed for dataset csv. "
                f"{_received('target_column', target_column)}"
            )
        batch_size = self.batch_size
        if batch_size is not None:
            batch_size = _integer("batch_size", batch_size, 1)
        n_samples = self.n_samples
        if n_samples is not None:
            n_samples = _integer("n_samples", n_samples, 2)
        _set(
            self,
            dataset=dataset,
            data_path=data_path,
            target_column=target_column,
            validation_split=_number(
                "validation_split", self.validation_split, 0, 1, low_open=True, high_open=True
            ),
            standardize=_flag("standardize", self.standardize),
            noise=_number("noise", self.noise, 0),
            n_samples=n_samples,
            batch_size=batch_size,
            epochs=_integer("epochs", self.epochs, 1),
            seed=_integer("seed", self.seed, 0, MAX_SEED),
            device=_one_of("device", self.device, DEVICES),
            backend=_one_of("backend", self.backend, BACKENDS),
            name=_text("name", self.name),
            sweep_id=_text("sweep_id", self.sweep_id),
            sweep_name=_text("sweep_name", self.sweep_name),
        )

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON values, nested as `meta.json` stores it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainingConfig:
        """Parses nested settings (a stored run's config, the page's widget values).

        A missing setting takes its default (so configs written by older versions load); an
        unknown one, a section that is not a mapping or a bad value raises ValueError naming it.
        """
        settings = _section("config", data, cls)
        optimizer = _section("optimizer", settings.pop("optimizer", {}), OptimizerSpec)
        schedule = _section("schedule", optimizer.pop("schedule", {}), ScheduleSpec)
        return cls(
            model=ModelSpec(**_section("model", settings.pop("model", {}), ModelSpec)),
            optimizer=OptimizerSpec(**optimizer, schedule=ScheduleSpec(**schedule)),
            **settings,
        )


def _section(name: str, data: Any, spec: type) -> dict[str, Any]:
    """A copy of one mapping of settings, checked to hold only the fields of `spec`."""
    if not isinstance(data, Mapping):
        raise ValueError(f"`{name}` must be a mapping of settings. {_received(name, data)}")
    fields = {f.name for f in dataclasses.fields(spec)}
    unknown = [key for key in data if key not in fields]
    if unknown:
        raise ValueError(
            f"`{name}` has unknown settings: {', '.join(map(repr, unknown))}. "
            f"Known: {', '.join(sorted(fields))}"
        )
    return dict(data)


# --- the entries' own formats --------------------------------------------------------------------


def parse_batch_size(text: str | int | None) -> int | None:
    """`"full"` -> None (the whole training set), `"online"` -> 1, or a positive integer
    (given as text, as the CLI and the page's radio give it, or as an int)."""
    if text is None or text == "full":
        return None
    if text == "online":
        return 1
    try:
        size = int(text)
    except (TypeError, ValueError):
        size = 0
    if size < 1 or isinstance(text, bool | float):
        raise ValueError(
            "`batch_size` must be 'full', 'online' or a positive integer. "
            f"Received: batch_size={text!r}"
        )
    return size


# --- the one check that needs the data -----------------------------------------------------------


def check_model_fits(model: ModelSpec, task: str, input_shape: tuple[int, ...]) -> None:
    """Raises ValueError naming the argument when the model cannot train on this data: a CNN
    needs images, and the loss must fit the task. Called where the dataset's task and shape
    are known before a run starts (the Train page, `sgdplus train`)."""
    if model.kind == "cnn" and len(input_shape) != 3:
        raise ValueError(f"`model` cnn needs images. Received: input shape {input_shape}")
    if model.loss != "auto" and model.loss not in LOSSES[task]:
        raise ValueError(
            f"`loss` for a {task} task must be one of {', '.join(LOSSES[task])}. "
            f"Received: loss={model.loss!r}"
        )


def default_name(config: TrainingConfig) -> str:
    spec = config.optimizer
    mode = spec.name
    if spec.name == "sgdplus":
        mode = (
            "nesterov"
            if spec.nesterov and spec.momentum
            else "momentum"
            if spec.momentum
            else "sgd"
        )
    size = "full" if config.batch_size is None else config.batch_size
    return f"{config.dataset} {mode} lr={spec.learning_rate:g} bs={size}"
