"""The arithmetic of SGDPlus, written once for every array type.

Each function takes gradients and slots (NumPy arrays, TensorFlow tensors or JAX arrays:
only ``+``, ``-`` and ``*`` are used) and returns what is added to (or subtracted from) the
weight and the new slot; none of them touches a variable. SGDPlus applies them with
``assign_add`` / ``assign_sub``, as ``keras.optimizers.SGD`` does, so that in a graph the
update takes no more operations than Keras's own. Notation as in the docstring of
``SGDPlus`` (keras_sgdplus/sgd_plus.py): ``w`` weight, ``g`` gradient, ``lr`` learning rate
of this step, ``mu`` momentum, ``tau`` dampening.
"""

from __future__ import annotations

from typing import Any

# A NumPy array, TensorFlow tensor or JAX array: anything with +, - and *.
Array = Any


def decayed_learning_rate(base_rate: Any, decay: float, step: Any) -> Any:
    """Inverse-time decay of tf.keras 1.x/2.x (``decay=``), applied per iteration.

    ``lr_t = base(t) / (1 + decay * t)``, where ``t`` counts the updates already applied;
    computed in the dtype of its arguments (SGDPlus passes them in the variable's dtype).
    """
    return base_rate / (1.0 + decay * step)


def with_coupled_weight_decay(gradient: Array, weight: Array, coupled_weight_decay: float) -> Array:
    """L2 regularisation folded into the gradient: ``g = g + coupled_weight_decay * w``."""
    return gradient + coupled_weight_decay * weight


def plain_decrement(gradient: Array, learning_rate: Any) -> Array:
    """Vanilla gradient descent, ``w = w - lr * g``: returns ``lr * g``."""
    return gradient * learning_rate


def keras_momentum_increment(
    gradient: Array,
    velocity: Array,
    learning_rate: Any,
    momentum: Any,
    dampening: Any,
    nesterov: bool,
) -> tuple[Array, Array]:
    """One step of momentum in the Keras convention; returns ``(increment, v)``, with
    ``w = w + increment``.

    ```
    v = mu * v - (1 - tau) * lr * g
    w = w + v                       (plain momentum)
    w = w + mu * v - lr * g         (nesterov=True; Sutskever et al. 2013)
    ```
    The velocity ``v`` holds steps already scaled by the rate they were taken at. A
    ``dampening`` of the number 0 costs no operation (``(1 - 0) * lr`` is ``lr`` exactly).
    """
    gradient_rate = learning_rate if _is_zero(dampening) else (1.0 - dampening) * learning_rate
    velocity = velocity * momentum - gradient * gradient_rate
    if nesterov:
        return velocity * momentum - gradient * learning_rate, velocity
    return velocity, velocity


def torch_momentum_decrement(
    gradient: Array,
    buffer: Array,
    learning_rate: Any,
    momentum: Any,
    gradient_scale: Any,
    nesterov: bool,
) -> tuple[Array, Array]:
    """One step of momentum in the ``torch.optim.SGD`` convention; returns
    ``(decrement, b)``, with ``w = w - decrement``.

    ```
    b = g                           on the variable's first step   (gradient_scale = 1)
    b = mu * b + (1 - tau) * g      afterwards                     (gradient_scale = 1 - tau)
    w = w - lr * (g + mu * b)       (nesterov=True)
    w = w - lr * b                  (plain momentum)
    ```
    The buffer starts at zero, so ``mu * b`` vanishes on the first step and one formula
    covers both cases. The buffer holds gradients, not steps: a new rate applies at once. A
    ``gradient_scale`` of the number 1 costs no operation.
    """
    scaled = gradient if _is_one(gradient_scale) else gradient * gradient_scale
    buffer = buffer * momentum + scaled
    direction = gradient + buffer * momentum if nesterov else buffer
    return direction * learning_rate, buffer


def torch_gradient_scale(dampening: float, first_step: Any) -> Any:
    """``1`` on a variable's first step with a gradient (the buffer is set to ``g``),
    ``1 - dampening`` after it; ``first_step`` is 1 or 0 for that variable."""
    return 1.0 - dampening * (1.0 - first_step)


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == 0


def _is_one(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == 1
