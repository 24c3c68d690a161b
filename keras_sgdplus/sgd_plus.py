"""SGDPlus: SGD with momentum, Nesterov, dampening, decay and two conventions, XLA-compiled."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_sgdplus import _backend, update_rules, validation


@keras.saving.register_keras_serializable(package="keras_sgdplus")
class SGDPlus(keras.optimizers.Optimizer):
    """Stochastic gradient descent with momentum, in the Keras or the PyTorch convention.

    A drop-in for `keras.optimizers.SGD` (same defaults, same results for every argument
    they share) that adds what recipes ported from tf.keras 2 and PyTorch need, and runs
    the update of all variables as one XLA-compiled computation where that pays: called
    eagerly, or inside a TensorFlow graph on variables of 2**18 elements or more on average
    (`XLA_IN_GRAPH_MIN_MEAN_SIZE`); otherwise the update is part of the caller's graph or
    jitted step, as `keras.optimizers.SGD`'s is.

    Notation: `w` weight, `g` gradient, `lr_t` learning rate of step `t`, `mu` momentum,
    `tau` dampening; `t` is `optimizer.iterations` before the step (the first step has
    `t = 0`).

    ```
    lr_t = base(t) / (1 + decay * t)     # base: the float, schedule or callable given
    g    = g + coupled_weight_decay * w  # L2 folded into the gradient
    ```
    With `momentum=0` the step is `w = w - lr_t * g` in both conventions (dampening has
    no effect there, as in PyTorch). Otherwise, `convention="keras"` (as
    `keras.optimizers.SGD` and tf.keras):
    ```
    v = mu * v - (1 - tau) * lr_t * g
    w = w + v                            # plain momentum
    w = w + mu * v - lr_t * g            # nesterov=True
    ```
    and `convention="torch"` (as `torch.optim.SGD`, also when the rate changes):
    ```
    b = g                                # on the variable's first step with a gradient
    b = mu * b + (1 - tau) * g           # afterwards
    w = w - lr_t * b                     # plain momentum
    w = w - lr_t * (g + mu * b)          # nesterov=True
    ```
    As in PyTorch, "first step" is counted per variable: a variable that gets no gradient
    at a step (its gradient is `None`, or `apply` is called without it) is left alone,
    and its buffer starts at `b = g` when its first gradient arrives, however late.
    With a constant rate and `tau = 0` both conventions give the same trajectory
    (`v = -lr * b`). When the rate changes they differ: the Keras velocity keeps the steps
    taken at the old rate, the PyTorch buffer keeps gradients and applies a new rate at
    once. Nesterov momentum in this form is from Sutskever et al., "On the importance of
    initialization and momentum in deep learning" (ICML 2013).

    `decay` behaves as in tf.keras 2.15 (`tf.keras.optimizers.legacy.SGD`), its
    reference: `optimizer.learning_rate` reads and sets the base rate `base(t)`, without
    the decay, so callbacks that read, change and set it back (`ReduceLROnPlateau`,
    `LearningRateScheduler`) scale the base and the decay goes on from there, instead of
    compounding. `optimizer.current_learning_rate` is `lr_t`, the rate the next step will
    use, for logging. The division by `1 + decay * t` is computed per variable in the
    variable's dtype (float64 for float64 variables) with `decay` rounded to float32,
    as tf.keras 2 did. One difference from tf.keras 2 remains: it kept `momentum` as a
    float32 variable (so `0.9` became `0.8999999761581421` for float64 variables), while
    SGDPlus uses the exact value, as `keras.optimizers.SGD` does.

    Decoupled `weight_decay` (`w = w - lr_t * weight_decay * w`, before the step above)
    and every other option of the Keras base optimizer work unchanged.

    Args:
        learning_rate: A float >= 0, a `keras.optimizers.schedules.LearningRateSchedule`,
            or a callable that takes no arguments and returns the rate: `base(t)` above.
            Defaults to `0.01`. The `learning_rate` property reads and sets this base
            rate (as in Keras and in tf.keras 2), not `lr_t`; see `current_learning_rate`.
        momentum: Float in [0, 1]; 0 is vanilla gradient descent. Defaults to `0.0`.
        nesterov: Whether to apply Nesterov momentum. Defaults to `False`.
        dampening: Float in [0, 1], the `tau` above: the share of each new gradient kept
            out of the momentum. Defaults to `0.0`.
        decay: Float >= 0, the inverse-time decay per iteration of tf.keras 1.x/2.x
            (`decay=` of `tf.keras.optimizers.legacy.SGD`), applied on top of `base(t)`.
            Defaults to `0.0`.
        coupled_weight_decay: Float >= 0, L2 regularisation added to the gradient (the
            `weight_decay` of `torch.optim.SGD`). Defaults to `0.0`.
        convention: `"keras"` or `"torch"`, how momentum meets the learning rate.
            Defaults to `"keras"`.
        jit_compile: Whether to run the update of all variables as one XLA-compiled
            computation where that pays (see above). Defaults to `True`.
        **kwargs: Every keyword argument of `keras.optimizers.SGD`: `weight_decay`,
            `clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`, `ema_momentum`,
            `ema_overwrite_frequency`, `loss_scale_factor`,
            `gradient_accumulation_steps` and `name`.
    """

    built: bool  # set by Keras's base optimizer

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        dampening: float = 0.0,
        decay: float = 0.0,
        coupled_weight_decay: float = 0.0,
        convention: str = "keras",
        jit_compile: bool = True,
        **kwargs: Any,
    ) -> None:
        learning_rate = validation.check_learning_rate(learning_rate)
        momentum = validation.check_unit_interval("momentum", momentum)
        nesterov = validation.check_bool("nesterov", nesterov)
        dampening = validation.check_unit_interval("dampening", dampening)
        decay = validation.check_non_negative("decay", decay)
        coupled_weight_decay = validation.check_non_negative(
            "coupled_weight_decay", coupled_weight_decay
        )
        convention = validation.check_convention(convention)
        jit_compile = validation.check_bool("jit_compile", jit_compile)
        super().__init__(learning_rate=learning_rate, **kwargs)
        if momentum == 0 and nesterov:
            warnings.warn(
                "`nesterov=True` has no effect with `momentum=0`: SGDPlus runs plain SGD, "
                "as keras.optimizers.SGD does.",
                stacklevel=2,
            )
        if momentum == 0 and dampening > 0:
            warnings.warn(
                f"`dampening={dampening}` has no effect with `momentum=0`: SGDPlus runs "
                "plain SGD, as torch.optim.SGD does.",
                stacklevel=2,
            )
        self.momentum = momentum
        self.nesterov = nesterov
        self.dampening = dampening
        self.decay = decay
        self.coupled_weight_decay = coupled_weight_decay
        self.convention = convention
        self.jit_compile = jit_compile
        self._step_learning_rate: Any = None
        self._compiled = _CompiledUpdates()

    def build(self, variables: list[Any]) -> None:
        """Creates one momentum slot per variable (named as `keras.optimizers.SGD` does).

        With `convention="torch"`, momentum and dampening, also one scalar per variable,
        `buffer_started`: 0 until the variable's first step with a gradient, 1 after it.
        """
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        self.buffer_started: list[Any] = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")
        if self.convention == "torch" and self.momentum != 0 and self.dampening != 0:
            self.buffer_started = [
                None if slot is None else self._add_scalar_variable(variable, "buffer_started")
                for variable, slot in zip(variables, self.momentums, strict=True)
            ]

    def _add_scalar_variable(self, reference: Any, name: str) -> Any:
        """A zero scalar of `reference`'s dtype, named after it as Keras names its slots."""
        if hasattr(reference, "path"):
            prefix = reference.path.replace("/", "_")
        else:
            prefix = str(reference.name).replace("/", "_").replace(":", "_")
        return self.add_variable(
            shape=(), initializer="zeros", dtype=reference.dtype, name=f"{prefix}_{name}"
        )

    # -- learning rate -------------------------------------------------------------------

    def _get_current_learning_rate(self) -> Any:
        """`base(t)`, what `learning_rate` returns: the float, schedule or callable's rate.

        Inside a compiled update it is the base rate read before it (so that a callable is
        asked once per step, eagerly).
        """
        if self._step_learning_rate is not None:
            return self._step_learning_rate
        return super()._get_current_learning_rate()

    @property
    def current_learning_rate(self) -> Any:
        """`lr_t = base(t) / (1 + decay * t)`, the rate the next step will use (a scalar tensor).

        `t` is `optimizer.iterations` now, `base(t)` is `learning_rate`; with `decay=0`
        it is `learning_rate` itself. The rate tf.keras 2's `SGD(decay=...)` applied, and
        the one to log: `learning_rate` is the base rate, without the decay. Computed in
        float64 when the optimizer updates float64 variables, as their steps compute it,
        and otherwise in the dtype of the base rate (float32 unless Keras's floatx is
        changed).
        """
        base_rate = ops.convert_to_tensor(self._get_current_learning_rate())
        dtype = keras.backend.standardize_dtype(base_rate.dtype)
        if self.built and any(
            keras.backend.standardize_dtype(v.dtype) == "float64" for v in self._trainable_variables
        ):
            dtype = "float64"
        return self._decayed_learning_rate(base_rate, dtype)

    def _decayed_learning_rate(self, base_rate: Any, dtype: str) -> Any:
        """`lr_t` in `dtype`, as tf.keras 2's `_decayed_lr(dtype)`: the base rate is cast to
        `dtype`, then divided by `1 + decay * t` computed in `dtype`."""
        rate = ops.cast(base_rate, dtype)
        if self.decay == 0:
            return rate
        step = ops.cast(self.iterations, dtype)
        return update_rules.decayed_learning_rate(rate, _constant(self._stored_decay, dtype), step)

    @property
    def _stored_decay(self) -> float:
        """`decay` as tf.keras 2 stored it: a float32 constant (0.05 -> 0.05000000074505806)."""
        return float(np.float32(self.decay))

    @contextlib.contextmanager
    def _learning_rate_fixed_to(self, learning_rate: Any) -> Iterator[None]:
        """Within the block every reader of the learning rate gets `learning_rate`."""
        self._step_learning_rate = learning_rate
        try:
            yield
        finally:
            self._step_learning_rate = None

    # -- the update ----------------------------------------------------------------------

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Applies the rule of the class docstring to one variable; `learning_rate` is
        the base rate, decayed here in the variable's dtype."""
        dtype = variable.dtype
        learning_rate = self._decayed_learning_rate(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        if self._decoupled_weight_decay_in_step(variable):
            # as Keras's `_apply_weight_decay`, with `lr_t`: w = w - w * weight_decay * lr_t
            weight_decay = ops.cast(self.weight_decay, dtype)
            self.assign_sub(variable, _read(variable) * weight_decay * learning_rate)
        if self.coupled_weight_decay:
            gradient = update_rules.with_coupled_weight_decay(
                _backend.densify(gradient),
                _read(variable),
                _constant(self.coupled_weight_decay, dtype),
            )
        if self.momentum == 0:
            if _backend.is_sparse(gradient):
                self.assign_sub(variable, _backend.scale_sparse(gradient, learning_rate))
            else:
                self.assign_sub(variable, update_rules.plain_decrement(gradient, learning_rate))
            return
        gradient = _backend.densify(gradient)
        index = self._get_variable_index(variable)
        slot = self.momentums[index]
        if self.convention == "keras":
            increment, slot_value = update_rules.keras_momentum_increment(
                gradient,
                _read(slot),
                learning_rate,
                _constant(self.momentum, dtype),
                _constant(self.dampening, dtype) if self.dampening else 0.0,
                self.nesterov,
            )
            self.assign(slot, slot_value)
            self.assign_add(variable, increment)
            return
        gradient_scale: Any = 1.0  # without dampening, b = mu * b + g (b starts at zero)
        if self.buffer_started:  # dampening > 0: b = g on this variable's first step
            started = self.buffer_started[index]
            first_step = 1.0 - _read(started)
            self.assign(started, ops.ones((), dtype))
            gradient_scale = update_rules.torch_gradient_scale(self.dampening, first_step)
        decrement, slot_value = update_rules.torch_momentum_decrement(
            gradient,
            _read(slot),
            learning_rate,
            _constant(self.momentum, dtype),
            gradient_scale,
            self.nesterov,
        )
        self.assign(slot, slot_value)
        self.assign_sub(variable, decrement)

    def _apply_weight_decay(self, variables: Any) -> None:
        """Keras's decoupled weight decay; with `decay`, `update_step` applies it instead,
        at the decayed rate of each variable's dtype (Keras's would use the base rate)."""
        if self.decay == 0:
            super()._apply_weight_decay(variables)

    def _decoupled_weight_decay_in_step(self, variable: Any) -> bool:
        return (
            bool(self.decay) and self.weight_decay is not None and self._use_weight_decay(variable)
        )

    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        """Updates the variables; an eager TensorFlow step, counter included, is one XLA call.

        What Keras's `apply` does around the update (filtering missing gradients, loss
        scaling, constraints, counting the step) costs more than the update itself when
        called eagerly. Where none of it has work to do, the step counter is advanced inside
        the compiled update and that is all that runs; otherwise Keras's `apply` runs.
        """
        variables = self._trainable_variables
        if trainable_variables is not None:
            variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(variables)
                self.built = True
        if not self.built or not self._whole_step_in_xla(grads, variables):
            super().apply(grads, trainable_variables)
            return
        order = self._compiled.order(variables, self)
        learning_rate = _backend.read_value(self.learning_rate)
        self._compiled.tensorflow(self._apply_in_place)(
            learning_rate, tuple(grads), order, count_step=True
        )

    def _whole_step_in_xla(self, grads: Any, variables: list[Any]) -> bool:
        """True for an eager TensorFlow step with a dense gradient for every plain variable."""
        return (
            _backend.BACKEND == "tensorflow"
            and self.loss_scale_factor is None
            and len(grads) == len(variables) > 0
            and _backend.all_eager_dense(grads)
            and self._compiled.plain_variables(variables)
            and self._update_route(grads) == "tensorflow_xla"
        )

    def _backend_apply_gradients(self, grads: list[Any], trainable_variables: list[Any]) -> None:
        """Clipping, weight decay, the step and EMA: XLA-compiled as one computation."""
        route = self._update_route(grads)
        if route == "as_is":
            super()._backend_apply_gradients(grads, trainable_variables)
            return
        learning_rate = _backend.read_value(self.learning_rate)
        order = self._compiled.order(trainable_variables, self)
        if route == "tensorflow_xla":
            self._compiled.tensorflow(self._apply_in_place)(learning_rate, tuple(grads), order)
        else:
            self._apply_with_jax_jit(learning_rate, grads, order)

    def _update_route(self, grads: list[Any]) -> str:
        """`"tensorflow_xla"`, `"jax_jit"`, or `"as_is"` (Keras's own graph/eager update)."""
        if not self.jit_compile or _backend.is_traced(grads):
            return "as_is"  # inside jax.jit (model.fit on JAX) the step is compiled already
        strategy = _backend.distribution_strategy_name()
        reason = (
            f"the update runs under tf.distribute.{strategy}, whose cross-replica "
            "variable updates XLA cannot compile"
            if strategy
            else _backend.xla_unavailable_reason()
        )
        if reason:
            self._warn_once(
                f"SGDPlus is not XLA-compiling its update: {reason}. "
                "It runs the graph update instead, with the same results."
            )
            return "as_is"
        if _backend.in_tensorflow_graph() and not _launch_pays_in_graph(grads):
            return "as_is"  # part of the caller's graph (XLA-compiled with it where it is)
        return "jax_jit" if _backend.BACKEND == "jax" else "tensorflow_xla"

    def _apply_in_place(
        self,
        learning_rate: Any,
        grads: tuple[Any, ...],
        order: tuple[int, ...],
        count_step: bool = False,
    ) -> None:
        """The whole update, traced once per structure of `grads` and compiled by XLA."""
        variables = [self._trainable_variables[i] for i in order]
        with self._learning_rate_fixed_to(learning_rate):
            super()._backend_apply_gradients(list(grads), variables)
        if count_step:
            self._iterations.assign_add(1)

    def _apply_with_jax_jit(
        self, learning_rate: Any, grads: list[Any], order: tuple[int, ...]
    ) -> None:
        """The whole update as a pure function under `jax.jit`; results assigned after it."""
        jitted = self._compiled.jax(self._apply_stateless)
        new_trainable, new_optimizer = jitted(
            [v.value for v in self._trainable_variables],
            [v.value for v in self.variables],
            learning_rate,
            list(grads),
            order,
        )
        for variable, value in zip(self._trainable_variables, new_trainable, strict=True):
            variable.assign(value)
        for variable, value in zip(self.variables, new_optimizer, strict=True):
            variable.assign(value)

    def _apply_stateless(
        self,
        trainable_values: list[Any],
        optimizer_values: list[Any],
        learning_rate: Any,
        grads: list[Any],
        order: tuple[int, ...],
    ) -> tuple[list[Any], list[Any]]:
        mapping = list(zip(self._trainable_variables, trainable_values, strict=True))
        mapping += list(zip(self.variables, optimizer_values, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self._apply_in_place(learning_rate, tuple(grads), order)
        return (
            [scope.get_current_value(v) for v in self._trainable_variables],
            [scope.get_current_value(v) for v in self.variables],
        )

    def _warn_once(self, message: str) -> None:
        if message not in self._compiled.warned:
            self._compiled.warned.add(message)
            warnings.warn(message, stacklevel=3)

    # -- tf.keras 2 compatibility ----------------------------------------------------------

    def minimize(self, loss: Any, var_list: Any, tape: Any = None) -> Any:
        """Minimizes `loss` over `var_list` with one step, as in tf.keras 2.

        Args:
            loss: A zero-argument callable returning the loss, or (on TensorFlow) a tensor
                computed under `tape`.
            var_list: The variables to update, or a callable returning them.
            tape: The `tf.GradientTape` that recorded a tensor `loss`.

        Returns:
            `optimizer.iterations`, after the step.
        """
        var_list = list(var_list() if callable(var_list) else var_list)
        grads = _backend.gradients(loss, var_list, tape)
        self.apply_gradients(zip(grads, var_list, strict=True))
        return self.iterations

    # -- serialization -----------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "nesterov": self.nesterov,
                "dampening": self.dampening,
                "decay": self.decay,
                "coupled_weight_decay": self.coupled_weight_decay,
                "convention": self.convention,
                "jit_compile": self.jit_compile,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> SGDPlus:
        """The optimizer of `get_config()`; unlike Keras's, leaves `config` unchanged."""
        return super().from_config(dict(config), custom_objects=custom_objects)


#: Inside a TensorFlow graph that XLA does not compile (a plain `tf.function`, `model.fit`
#: on a CPU-only machine), SGDPlus launches its own XLA computation only when the variables
#: hold on average at least this many elements: below it the launch costs more than the
#: fused update saves (benchmarks/update_step.py, the "tf.function" and "fit" rows).
XLA_IN_GRAPH_MIN_MEAN_SIZE = 2**18


def _launch_pays_in_graph(grads: list[Any]) -> bool:
    """True when the gradients average at least `XLA_IN_GRAPH_MIN_MEAN_SIZE` elements."""
    sizes = [_backend.static_size(g) for g in grads]
    return bool(sizes) and sum(sizes) >= XLA_IN_GRAPH_MIN_MEAN_SIZE * len(sizes)


def _constant(value: float, dtype: str) -> Any:
    """A hyperparameter as a tensor of `dtype`, without a detour through float32."""
    return ops.convert_to_tensor(value, dtype)


def _read(variable: Any) -> Any:
    """The current value of a Keras variable or of the `tf.Variable` inside one."""
    if isinstance(variable, keras.Variable):
        return variable.value
    return ops.convert_to_tensor(variable)


class _CompiledUpdates:
    """The compiled update functions of one optimizer, made on first use.

    A plain object, so that TensorFlow's tracking of the optimizer ignores the functions.
    """

    def __init__(self) -> None:
        self._tensorflow: Any = None
        self._jax: Any = None
        self.warned: set[str] = set()
        self._orders: dict[tuple[int, ...], tuple[int, ...]] = {}

        self._plain: dict[tuple[int, ...], bool] = {}

    def order(self, variables: list[Any], optimizer: SGDPlus) -> tuple[int, ...]:
        """The optimizer's indices of `variables`, remembered by the variables' identities.

        An optimizer holds the variables it was built with, so their ids stay theirs.
        """
        key = tuple(map(id, variables))
        order = self._orders.get(key)
        if order is None:
            optimizer._check_variables_are_known(variables)
            order = tuple(optimizer._get_variable_index(v) for v in variables)
            self._orders[key] = order
        return order

    def plain_variables(self, variables: list[Any]) -> bool:
        """True when no variable has a constraint or is overwritten with its gradient."""
        key = tuple(map(id, variables))
        plain = self._plain.get(key)
        if plain is None:
            plain = self._plain[key] = not any(
                getattr(v, "constraint", None) is not None
                or getattr(v, "overwrite_with_gradient", False)
                for v in variables
            )
        return plain

    def tensorflow(self, body: Any) -> Any:
        if self._tensorflow is None:
            self._tensorflow = _backend.TensorFlowXlaUpdate(body)
        return self._tensorflow

    def jax(self, body: Any) -> Any:
        if self._jax is None:
            self._jax = _backend.jax_jit(body, static_argnums=(4,))
        return self._jax
