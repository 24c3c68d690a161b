"""`sgdplus export --tensorboard`: the event files read back with TensorBoard's own reader
(`EventAccumulator`) and its HParams plugin's parser, against the run's CSV files."""

import datetime as dt

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.tensorboard_export import export_tensorboard, flat_settings
from keras_sgdplus.lab.training import run_training

pytestmark = pytest.mark.usefixtures("fresh_keras_state")


def read(folder):
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def value_of(value):
    """A `google.protobuf.Value` as Python (number, text or bool)."""
    return getattr(value, value.WhichOneof("kind"))


def test_the_event_files_hold_every_batch_every_epoch_and_the_settings(tmp_path):
    store = RunStore(tmp_path / "runs")
    config = TrainingConfig(
        dataset="iris",
        model=ModelSpec(depth=1, width=8),
        batch_size=16,
        epochs=3,
        optimizer=OptimizerSpec(learning_rate=0.05, momentum=0.9, nesterov=True),
    )
    run = store.load(run_training(config, store))
    folder = export_tensorboard(store, run.run_id, tmp_path / "logs")
    assert folder == tmp_path / "logs" / run.run_id
    started = dt.datetime.fromisoformat(run.meta["created_at"]).timestamp()

    train = read(folder / "train")
    batches = run.batches
    for tag, column in (
        ("batch_loss", "loss"),
        ("batch_learning_rate", "learning_rate"),
        ("batch_grad_norm", "grad_norm"),
    ):
        events = train.Scalars(tag)
        assert [e.step for e in events] == batches.step.tolist()
        np.testing.assert_array_equal(
            [e.value for e in events], batches[column].to_numpy(dtype="float32")
        )
        np.testing.assert_allclose([e.wall_time for e in events], started + batches.wall_time)
    epochs = run.epochs
    validation = read(folder / "validation")
    for reader, tag, column in (
        (train, "epoch_loss", "loss"),
        (train, "epoch_accuracy", "accuracy"),
        (validation, "epoch_loss", "val_loss"),
        (validation, "epoch_accuracy", "val_accuracy"),
    ):
        events = reader.Scalars(tag)
        assert [e.step for e in events] == [0, 1, 2]
        np.testing.assert_array_equal(
            [e.value for e in events], epochs[column].to_numpy(dtype="float32")
        )
    assert "epoch_val_loss" not in train.Tags()["scalars"]

    root = read(folder)
    (content,) = root.PluginTagToContent(hparams_metadata.PLUGIN_NAME).values()
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    values = {name: value_of(value) for name, value in start.hparams.items()}
    assert values["optimizer.learning_rate"] == 0.05
    assert values["optimizer.momentum"] == 0.9
    assert values["optimizer.nesterov"] is True
    assert values["batch_size"] == 16
    assert values["dataset"] == "iris"
    assert values["model.width"] == 8
    assert set(values) == set(flat_settings(run.meta["config"]))
    assert start.start_time_secs == pytest.approx(started)


def test_settings_flatten_to_values_the_hparams_tab_takes():
    assert flat_settings({"a": {"b": 1, "c": {"d": True}}, "e": None, "f": "x", "g": [1]}) == {
        "a.b": 1,
        "a.c.d": True,
        "e": "None",
        "f": "x",
        "g": "[1]",
    }
