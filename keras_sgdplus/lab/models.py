"""Models and losses for a dataset: an MLP for features, a small CNN for images.

The settings (`ModelSpec`, the `LOSSES` of each task) live in `lab/config.py`.
"""

from __future__ import annotations

import keras

from keras_sgdplus.lab.config import LOSSES, ModelSpec

LOSS_CLASSES = {
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "mse": keras.losses.MeanSquaredError,
    "mae": keras.losses.MeanAbsoluteError,
}


def make_loss(name: str) -> keras.losses.Loss:
    """The Keras loss object of `name` (mean over the batch; ranks of y and y_pred aligned)."""
    return LOSS_CLASSES[name]()


def loss_name(spec: ModelSpec, task: str) -> str:
    return LOSSES[task][0] if spec.loss == "auto" else spec.loss


def build_model(
    spec: ModelSpec, task: str, input_shape: tuple[int, ...], num_classes: int | None
) -> keras.Model:
    """An uncompiled model whose last layer fits the task (softmax, sigmoid or linear).

    `spec` is trusted to fit the data (`config.check_model_fits`, where the run was set up).
    """
    layers: list[keras.layers.Layer] = [keras.Input(input_shape)]
    use_cnn = spec.kind == "cnn" or (spec.kind == "auto" and len(input_shape) == 3)
    if use_cnn:
        filters = max(spec.width // 2, 4)
        for _ in range(max(spec.depth, 1)):
            layers += [
                keras.layers.Conv2D(filters, 3, padding="same", activation=spec.activation),
                keras.layers.MaxPooling2D(),
            ]
            filters *= 2
        layers += [
            keras.layers.Flatten(),
            keras.layers.Dense(spec.width, activation=spec.activation),
        ]
    else:
        if len(input_shape) > 1:
            layers.append(keras.layers.Flatten())
        layers += [
            keras.layers.Dense(spec.width, activation=spec.activation) for _ in range(spec.depth)
        ]
    if task == "multiclass":
        layers.append(keras.layers.Dense(num_classes or 2, activation="softmax"))
    elif task == "binary":
        layers.append(keras.layers.Dense(1, activation="sigmoid"))
    else:
        layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers)


def metrics_for(task: str) -> list[str]:
    return ["mae"] if task == "regression" else ["accuracy"]
