"""lab/config.py: every setting checked once when a config is made, in Keras's error style; the
stored form (`to_dict` / `from_dict`) round-trips and keeps the meta.json format.

The entries that use it are tested where they are: the CLI in test_cli.py, the Train page in
tests/app/test_train_page.py, a stored run in test_runs.py (listed unreadable with the reason).
"""

import json
import math
import re

import numpy as np
import pytest

from keras_sgdplus.lab.config import (
    ModelSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainingConfig,
    check_model_fits,
    parse_batch_size,
)
from keras_sgdplus.lab.runs import UNREADABLE, RunStore, RunStoreError

# One row per bad value of every setting: the settings as `from_dict` takes them (the stored
# run's and the page's form), and the message. Each message names the setting and the value.
BAD_SETTINGS = {
    "dataset": ({"dataset": "nope"}, "`dataset` must be one of digits, "),
    "dataset type": ({"dataset": 3}, "Received: dataset=3"),
    "data_path missing (csv)": (
        {"dataset": "csv", "target_column": "y"},
        "`data_path` is needed for dataset csv. Received: data_path=None",
    ),
    "data_path missing (npz)": ({"dataset": "npz"}, "`data_path` is needed for dataset npz"),
    "data_path type": ({"data_path": 3}, "`data_path` must be text. Received: data_path=3"),
    "target_column missing": (
        {"dataset": "csv", "data_path": "x.csv"},
        "`target_column` is needed for dataset csv. Received: target_column=None",
    ),
    "validation_split": (
        {"validation_split": 1.5},
        "`validation_split` must be in (0, 1). Received: validation_split=1.5",
    ),
    "validation_split zero": ({"validation_split": 0}, "Received: validation_split=0"),
    "standardize": ({"standardize": "yes"}, "`standardize` must be True or False"),
    "noise": ({"noise": -0.1}, "`noise` must be a finite number >= 0. Received: noise=-0.1"),
    "n_samples": ({"n_samples": 1}, "`n_samples` must be >= 2. Received: n_samples=1"),
    "batch_size": ({"batch_size": 0}, "`batch_size` must be >= 1. Received: batch_size=0"),
    "batch_size text": ({"batch_size": "full"}, "`batch_size` must be an integer"),
    "epochs": ({"epochs": 0}, "`epochs` must be >= 1. Received: epochs=0"),
    "epochs float": ({"epochs": 2.5}, "`epochs` must be an integer. Received: epochs=2.5"),
    "seed": ({"seed": -1}, "`seed` must be in [0, 4294967295]. Received: seed=-1"),
    "device": ({"device": "tpu"}, "`device` must be one of auto, cpu, gpu. Received: device='tpu'"),
    "backend": (
        {"backend": "torch"},
        "`backend` must be one of auto, jax, tensorflow. Received: backend='torch'",
    ),
    "name": ({"name": None}, "`name` must be text. Received: name=None"),
    "model": (
        {"model": {"kind": "rnn"}},
        "`model` must be one of auto, mlp, cnn. Received: model='rnn'",
    ),
    "depth": ({"model": {"depth": 9}}, "`depth` must be in [0, 8]. Received: depth=9"),
    "width": ({"model": {"width": 0}}, "`width` must be in [1, 4096]. Received: width=0"),
    "activation": ({"model": {"activation": "swish"}}, "Received: activation='swish'"),
    "loss": ({"model": {"loss": "hinge"}}, "`loss` must be one of auto, "),
    "optimizer": ({"optimizer": {"name": "lion"}}, "Received: optimizer='lion'"),
    "learning_rate": (
        {"optimizer": {"learning_rate": -1}},
        "`learning_rate` must be a finite number >= 0. Received: learning_rate=-1",
    ),
    "learning_rate inf": ({"optimizer": {"learning_rate": math.inf}}, "learning_rate=inf"),
    "learning_rate nan": ({"optimizer": {"learning_rate": math.nan}}, "learning_rate=nan"),
    "momentum": (
        {"optimizer": {"momentum": 1.5}},
        "`momentum` must be in [0, 1]. Received: momentum=1.5",
    ),
    "momentum text": ({"optimizer": {"momentum": "0.9"}}, "`momentum` must be a number"),
    "nesterov": ({"optimizer": {"nesterov": 1}}, "`nesterov` must be True or False"),
    "convention": ({"optimizer": {"convention": "jax"}}, "Received: convention='jax'"),
    "schedule": ({"optimizer": {"schedule": {"name": "warp"}}}, "`schedule` must be one of"),
    "decay": ({"optimizer": {"schedule": {"decay": -1}}}, "Received: decay=-1"),
    "drop": (
        {"optimizer": {"schedule": {"drop": 0}}},
        "`drop` must be in (0, 1]. Received: drop=0",
    ),
    "every_steps": ({"optimizer": {"schedule": {"every_steps": 0}}}, "Received: every_steps=0"),
    "rate": ({"optimizer": {"schedule": {"rate": 1.5}}}, "`rate` must be in (0, 1]"),
    "warmup_steps": (
        {"optimizer": {"schedule": {"warmup_steps": -1}}},
        "`warmup_steps` must be >= 0. Received: warmup_steps=-1",
    ),
}


@pytest.mark.parametrize("field", list(BAD_SETTINGS))
def test_every_bad_setting_is_a_value_error_naming_it(field):
    settings, message = BAD_SETTINGS[field]
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainingConfig.from_dict(settings)


@pytest.mark.parametrize("field", list(BAD_SETTINGS))
def test_a_stored_run_with_a_bad_setting_is_listed_unreadable_with_the_reason(tmp_path, field):
    settings, message = BAD_SETTINGS[field]
    store = RunStore(tmp_path)
    with store.create("good", TrainingConfig().to_dict(), {}) as good:
        pass
    with store.create("edited by hand", TrainingConfig().to_dict(), {}) as bad:
        pass
    meta_file = store.path_of(bad.run_id) / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["config"] = settings
    meta_file.write_text(json.dumps(meta))
    listing = {run.run_id: run for run in store.list_runs()}
    assert listing[good.run_id].readable
    row = listing[bad.run_id]
    assert (row.readable, row.status) == (False, UNREADABLE)
    assert row.reason.startswith("meta.json has a bad config: ")
    assert message in row.reason
    with pytest.raises(RunStoreError, match=re.escape(message)):
        store.load(bad.run_id)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ScheduleSpec("warp"), "`schedule` must be one of"),
        (lambda: ScheduleSpec("time_decay", decay=-1), "Received: decay=-1"),
        (lambda: ScheduleSpec("step", drop=0), "Received: drop=0"),
        (lambda: ScheduleSpec("step", every_steps=0), "Received: every_steps=0"),
        (lambda: OptimizerSpec(momentum=2), "Received: momentum=2"),
        (lambda: OptimizerSpec(name="lion"), "Received: optimizer='lion'"),
        (lambda: ModelSpec(width=0), "Received: width=0"),
        (lambda: TrainingConfig(epochs=0), "Received: epochs=0"),
        (lambda: TrainingConfig(model={"depth": 1}), "`model` must be a ModelSpec"),
        (lambda: OptimizerSpec(schedule="cosine"), "`schedule` must be a ScheduleSpec"),
    ],
)
def test_the_constructors_check_too(make, message):
    """Built in Python (tests, notebooks), a spec is checked the same way."""
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    "config",
    [
        TrainingConfig(),
        TrainingConfig(
            dataset="circle",
            noise=0.3,
            n_samples=200,
            validation_split=0.25,
            standardize=False,
            model=ModelSpec(kind="mlp", depth=0, width=8, activation="tanh", loss="mse"),
            optimizer=OptimizerSpec(
                "sgdplus", 0.5, 0.9, True, "torch", ScheduleSpec("cosine", warmup_steps=10)
            ),
            batch_size=None,
            epochs=3,
            seed=7,
            device="cpu",
            backend="jax",
            name="a run",
        ),
        TrainingConfig(
            dataset="csv",
            data_path="/data/x.csv",
            target_column="y",
            optimizer=OptimizerSpec("adam", schedule=ScheduleSpec("step", drop=0.1)),
            batch_size=1,
        ),
        TrainingConfig(dataset="npz", data_path="/data/x.npz"),
    ],
    ids=["defaults", "everything set", "csv", "npz"],
)
def test_a_config_round_trips_through_its_stored_form(config):
    stored = config.to_dict()
    assert TrainingConfig.from_dict(stored) == config
    assert TrainingConfig.from_dict(stored).to_dict() == stored


def test_the_stored_format_is_unchanged():
    """meta.json's config as runs have stored it since the first version (older runs load)."""
    assert TrainingConfig().to_dict() == {
        "dataset": "digits",
        "data_path": None,
        "target_column": None,
        "validation_split": 0.2,
        "standardize": True,
        "noise": 0.1,
        "n_samples": None,
        "model": {"kind": "auto", "depth": 2, "width": 64, "activation": "relu", "loss": "auto"},
        "optimizer": {
            "name": "sgdplus",
            "learning_rate": 0.01,
            "momentum": 0.0,
            "nesterov": False,
            "convention": "keras",
            "schedule": {
                "name": "constant",
                "decay": 0.001,
                "drop": 0.5,
                "every_steps": 100,
                "rate": 0.5,
                "warmup_steps": 0,
            },
        },
        "batch_size": 32,
        "epochs": 10,
        "seed": 0,
        "device": "auto",
        "backend": "auto",
        "name": "",
        "sweep_id": "",
        "sweep_name": "",
    }
    # a run stored before `backend` (or the sweep's tags) existed loads, on the default
    older = TrainingConfig().to_dict()
    for key in ("backend", "sweep_id", "sweep_name"):
        del older[key]
    assert TrainingConfig.from_dict(older) == TrainingConfig()


def test_missing_settings_take_their_defaults():
    assert TrainingConfig.from_dict({}) == TrainingConfig()
    partial = {"epochs": 2, "optimizer": {"momentum": 0.9}}
    expected = TrainingConfig(epochs=2, optimizer=OptimizerSpec(momentum=0.9))
    assert TrainingConfig.from_dict(partial) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "`config` must be a mapping of settings. Received: config=[1, 2]"),
        ({"lr": 0.1}, "`config` has unknown settings: 'lr'"),
        ({"model": {"layers": 3}}, "`model` has unknown settings: 'layers'"),
        ({"optimizer": {"schedule": {"warmup": 3}}}, "`schedule` has unknown settings: 'warmup'"),
        ({"model": "mlp"}, "`model` must be a mapping of settings. Received: model='mlp'"),
        ({"optimizer": None}, "`optimizer` must be a mapping of settings"),
    ],
)
def test_a_malformed_config_names_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainingConfig.from_dict(data)


def test_numbers_are_stored_as_their_python_types():
    """JSON, NumPy and widgets give ints for floats and NumPy scalars: kept as float / int."""
    config = TrainingConfig(
        epochs=np.int64(3),
        validation_split=np.float32(0.5),
        optimizer=OptimizerSpec(learning_rate=1, momentum=np.float64(0.5)),
    )
    assert type(config.epochs) is int
    assert type(config.validation_split) is float
    assert type(config.optimizer.learning_rate) is float
    assert type(config.optimizer.momentum) is float
    assert config.optimizer.learning_rate == 1.0


def test_a_config_is_frozen():
    config = TrainingConfig()
    with pytest.raises(AttributeError):
        config.epochs = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "size"),
    [("full", None), (None, None), ("online", 1), ("32", 32), (7, 7)],
)
def test_parse_batch_size(text, size):
    assert parse_batch_size(text) == size


@pytest.mark.parametrize("text", ["zero", "0", "-3", "2.5", 2.5, True, ""])
def test_a_bad_batch_size_names_it(text):
    with pytest.raises(ValueError, match=re.escape(f"Received: batch_size={text!r}")):
        parse_batch_size(text)


def test_the_model_must_fit_the_data():
    check_model_fits(ModelSpec(kind="cnn"), "multiclass", (28, 28, 1))
    check_model_fits(ModelSpec(loss="mae"), "regression", (10,))
    with pytest.raises(ValueError, match="`model` cnn needs images"):
        check_model_fits(ModelSpec(kind="cnn"), "binary", (2,))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "`loss` for a multiclass task must be one of sparse_categorical_crossentropy, "
            "categorical_crossentropy. Received: loss='mae'"
        ),
    ):
        check_model_fits(ModelSpec(loss="mae"), "multiclass", (4,))
