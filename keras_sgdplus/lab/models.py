"""Models and losses for a dataset: an MLP for features, a small CNN for images."""

from __future__ import annotations

from dataclasses import dataclass

import keras

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu")
LOSSES = {
    "multiclass": ("sparse_categorical_crossentropy", "categorical_crossentropy"),
    "binary": ("binary_crossentropy", "mse"),
    "regression": ("mse", "mae"),
}


@dataclass(frozen=True)
class ModelSpec:
    """The architecture: `kind` "auto" picks a CNN for images, an MLP otherwise."""

    kind: str = "auto"  # "auto" | "mlp" | "cnn"
    depth: int = 2  # hidden Dense layers (MLP) or conv blocks (CNN)
    width: int = 64  # units per Dense layer; the CNN's first conv has width / 2 filters
    activation: str = "relu"
    loss: str = "auto"  # "auto" or one of LOSSES[task]


def check_model_settings(spec: ModelSpec) -> None:
    """Raises ValueError naming the argument for a setting out of range, whatever the data."""
    if spec.kind not in ("auto", "mlp", "cnn"):
        raise ValueError(f"`model` must be auto, mlp or cnn. Received: model={spec.kind!r}")
    if not 0 <= spec.depth <= 8:
        raise ValueError(f"`depth` must be in [0, 8]. Received: depth={spec.depth!r}")
    if not 1 <= spec.width <= 4096:
        raise ValueError(f"`width` must be in [1, 4096]. Received: width={spec.width!r}")
    if spec.activation not in ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {', '.join(ACTIVATIONS)}. "
            f"Received: activation={spec.activation!r}"
        )


def check_model(spec: ModelSpec, task: str, input_shape: tuple[int, ...]) -> None:
    """Raises ValueError naming the argument for an impossible combination."""
    check_model_settings(spec)
    if spec.kind == "cnn" and len(input_shape) != 3:
        raise ValueError(f"`model` cnn needs images. Received: input shape {input_shape}")
    if spec.loss != "auto" and spec.loss not in LOSSES[task]:
        raise ValueError(
            f"`loss` for a {task} task must be one of {', '.join(LOSSES[task])}. "
            f"Received: loss={spec.loss!r}"
        )


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
    """An uncompiled model whose last layer fits the task (softmax, sigmoid or linear)."""
    check_model(spec, task, input_shape)
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
