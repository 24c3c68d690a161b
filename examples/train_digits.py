"""Trains an MLP on scikit-learn's bundled digits with SGDPlus (Nesterov momentum, decay).

Run: `bash scripts/run.sh` (sets up .venv/ first), or `.venv/bin/python examples/train_digits.py`.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from keras_sgdplus import SGDPlus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=SGDPlus(learning_rate=0.05, momentum=0.9, nesterov=True, decay=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=2,
    )
    loss, accuracy = model.evaluate(x_val, y_val, verbose=0)
    print(f"validation loss {loss:.4f}, accuracy {accuracy:.4f}")
    print(
        f"learning rate after {int(model.optimizer.iterations)} steps: "
        f"{float(model.optimizer.current_learning_rate):.5f} "
        f"(base {float(model.optimizer.learning_rate):.5f}, decayed by decay=1e-3)"
    )


if __name__ == "__main__":
    main()
