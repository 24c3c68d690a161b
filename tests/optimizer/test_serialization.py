"""Keras serialization: configs round-trip, and a saved model resumes as if never stopped."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_sgdplus import SGDPlus

EVERY_ARGUMENT = {
    "learning_rate": 0.25,  # exact in float32, where Keras keeps the rate
    "momentum": 0.8,
    "nesterov": True,
    "dampening": 0.1,
    "decay": 0.01,
    "coupled_weight_decay": 5e-4,
    "convention": "torch",
    "jit_compile": False,
    "weight_decay": 1e-3,
    "clipnorm": 2.0,
    "use_ema": True,
    "ema_momentum": 0.95,
    "ema_overwrite_frequency": 10,
    "loss_scale_factor": 8.0,
    "gradient_accumulation_steps": 2,
    "name": "my_sgd",
}


def test_get_config_from_config_round_trips_every_argument():
    config = SGDPlus(**EVERY_ARGUMENT).get_config()
    for name, value in EVERY_ARGUMENT.items():
        assert config[name] == value, name
    json.dumps(config)  # plain JSON
    assert SGDPlus.from_config(config).get_config() == config


def test_a_schedule_round_trips():
    schedule = keras.optimizers.schedules.CosineDecay(
        0.1, decay_steps=100, warmup_steps=5, warmup_target=0.2
    )
    config = SGDPlus(learning_rate=schedule, momentum=0.9).get_config()
    restored = SGDPlus.from_config(config)
    assert isinstance(restored._learning_rate, keras.optimizers.schedules.CosineDecay)
    assert restored.get_config() == config


def test_registered_for_keras_serialization_by_name():
    serialized = keras.optimizers.serialize(SGDPlus(0.3, momentum=0.5, convention="torch"))
    assert serialized["registered_name"] == "keras_sgdplus>SGDPlus"
    restored = keras.optimizers.deserialize(json.loads(json.dumps(serialized)))
    assert isinstance(restored, SGDPlus)
    assert (restored.momentum, restored.convention) == (0.5, "torch")


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import keras_sgdplus  # registers SGDPlus; nothing else is passed to load_model

    path, data, out = sys.argv[1:4]
    model = keras.saving.load_model(path)
    optimizer = model.optimizer
    arrays = np.load(data)
    print("ITERATIONS", int(keras.ops.convert_to_numpy(optimizer.iterations)))
    print("CLASS", type(optimizer).__name__, optimizer.convention, optimizer.decay)
    print("STARTED", [float(keras.ops.convert_to_numpy(f)) for f in optimizer.buffer_started])
    slots = [keras.ops.convert_to_numpy(m) for m in optimizer.momentums]
    model.fit(arrays["x"], arrays["y"], batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.savez(out, *model.get_weights(), *slots)
    """
)


@pytest.mark.parametrize(
    ("convention", "dampening"),
    [("keras", 0.0), ("torch", 0.0), ("torch", 0.1)],
    ids=["keras", "torch", "torch-dampening"],
)
def test_saved_model_resumes_exactly_in_a_fresh_process(tmp_path, convention, dampening):
    """With torch's convention and dampening the optimizer also keeps, per variable, whether
    its buffer has started (`buffer_started`); that is saved and restored too."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")

    def compiled_model():
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
        )
        optimizer = SGDPlus(
            0.05,
            momentum=0.9,
            nesterov=dampening == 0,
            dampening=dampening,
            decay=0.05,
            convention=convention,
        )
        model.compile(optimizer=optimizer, loss="mse")
        return model

    uninterrupted = compiled_model()
    uninterrupted.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)

    interrupted = compiled_model()
    interrupted.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    saved_slots = [keras.ops.convert_to_numpy(m) for m in interrupted.optimizer.momentums]
    started = [keras.ops.convert_to_numpy(f) for f in interrupted.optimizer.buffer_started]
    assert len(started) == (len(saved_slots) if dampening else 0)
    assert all(f == 1 for f in started)
    interrupted.save(tmp_path / "model.keras")
    np.savez(tmp_path / "data.npz", x=x, y=y)

    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "model.keras"),
            str(tmp_path / "data.npz"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ITERATIONS 8" in result.stdout  # 64 samples / 16 per batch * 2 epochs
    assert f"CLASS SGDPlus {convention} 0.05" in result.stdout
    assert f"STARTED {[1.0] * len(started)}" in result.stdout

    resumed = np.load(tmp_path / "out.npz")
    weights = [resumed[f"arr_{i}"] for i in range(len(uninterrupted.get_weights()))]
    reloaded_slots = [resumed[f"arr_{len(weights) + i}"] for i in range(len(saved_slots))]
    for got, want in zip(reloaded_slots, saved_slots, strict=True):
        np.testing.assert_array_equal(got, want)
    assert any(np.any(s != 0) for s in saved_slots)
    for got, want in zip(weights, uninterrupted.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
