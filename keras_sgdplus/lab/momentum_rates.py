"""How fast heavy-ball momentum converges on a quadratic, after Goh's "Why Momentum Really Works".

Pure NumPy (no Keras, no Streamlit): the numbers behind the landscape page's "Why momentum
works" map. References:

- G. Goh, "Why Momentum Really Works", Distill, 2017. https://distill.pub/2017/momentum/
- B. T. Polyak, "Some methods of speeding up the convergence of iteration methods",
  USSR Computational Mathematics and Mathematical Physics 4(5), 1964.

The problem. A quadratic `f(w) = ½ wᵀ A w` whose symmetric positive-definite `A` has the
eigenvalues `λ_1 <= ... <= λ_n` (the ravine `f = (x² + 25 y²) / 2` has `λ = 1, 25`), and
heavy-ball momentum with step size `α` and momentum `β` (Goh's notation):

    z_{k+1} = β z_k + ∇f(w_k)
    w_{k+1} = w_k - α z_{k+1}

Keras's momentum update `v = μ v - lr g; w = w + v` is the same iteration with `v = -α z`,
`α = lr` and `β = μ`, so everything here applies to `SGDPlus(momentum=μ)` on the ravine.

In the eigenbasis of `A` the iteration splits into one 2-D linear recursion per eigenvalue
`λ`: with `x_k` the coordinate of `w_k` and `y_k` that of `z_k` along its eigenvector,

    (y_{k+1}, x_{k+1}) = R (y_k, x_k),      R = [[ β,    λ     ],
                                                 [-αβ,   1 - αλ]]

(Goh's `R`). Its trace is `t = 1 + β - αλ` and its determinant `β`, so its eigenvalues are

    σ_{1,2} = (t ± √(t² - 4β)) / 2.

The error along that eigenvector shrinks like `ρ(R)^k`, `ρ(R) = max(|σ_1|, |σ_2|)`:

    ρ(R) = √β                           when t² < 4β (complex σ: |σ_1| = |σ_2| = √det)
    ρ(R) = (|t| + √(t² - 4β)) / 2       otherwise (real σ),

and the whole error like `rate^k`, `rate = max over λ of ρ(R_λ)` (`convergence_rate`).

Goh's regions (his taxonomy figure), for one eigenvalue `λ`, from the sign of `t² - 4β` and
of `t` (with `α > 0`, `0 <= β < 1`); `eigenvalue_region` returns them:

- "monotonic" (Goh: "Monotonic Decrease"): both σ real and >= 0, `αλ <= (1 - √β)²`; the
  error falls without changing sign, as in gradient descent.
- "ripples" (Goh: "Ripples"): σ complex, `(1 - √β)² < αλ < (1 + √β)²`; the iterates spiral
  to 0 in low-frequency ripples, at the rate √β whatever α is.
- "oscillation" (Goh: "Monotonic Oscillations"): both σ real and < 0,
  `(1 + √β)² <= αλ < 2 (1 + β)`; the error flips sign every step.
- "divergence" (Goh: "Divergence"): `ρ(R) >= 1`, which for `α > 0`, `0 <= β < 1` is
  `αλ >= 2 (1 + β)`. (Goh writes `> 1`; at `ρ = 1` the error does not shrink either, so it
  counts here.)

Goh's fifth picture, "1-Step Convergence", is the single point `α = 1/λ`, `β = 0`
(`ρ = 0`), on the boundary of "monotonic". The real eigenvalues have the same sign because
their product is `β >= 0`, so these four regions cover every `(α, β)`.

The optimum (Polyak 1964; Goh, "Optimal parameters"): with `κ = λ_n / λ_1`,

    α* = (2 / (√λ_1 + √λ_n))²,    β* = ((√λ_n - √λ_1) / (√λ_n + √λ_1))²,
    rate(α*, β*) = √β* = (√κ - 1) / (√κ + 1),

where the slowest direction sits on the edge between "monotonic" and "ripples" and the
fastest on the edge between "ripples" and "oscillation", both at the rate √β*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "REGIONS",
    "REGION_TITLES",
    "OptimalMomentum",
    "convergence_rate",
    "eigenvalue_rate",
    "eigenvalue_region",
    "iteration_matrix",
    "optimal_momentum",
    "rate_grid",
    "region",
    "region_boundaries",
]

# Goh's regions of the (α, β) plane, in the order they come as αλ grows.
REGIONS = ("monotonic", "ripples", "oscillation", "divergence")

REGION_TITLES: dict[str, str] = {
    "monotonic": "Monotonic decrease",
    "ripples": "Ripples",
    "oscillation": "Oscillation (sign flips each step)",
    "divergence": "Divergence",
}
"""How each region is named in legends and tooltips (after Goh's figure)."""

Array = np.ndarray


# --- checking the arguments ----------------------------------------------------------------


def _as_array(name: str, value: Any) -> Array:
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a number or an array of numbers. Received: {name}={value!r}"
        ) from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be finite. Received: {name}={value!r}")
    return array


def _check(alpha: Any, beta: Any) -> tuple[Array, Array]:
    a = _as_array("alpha", alpha)
    b = _as_array("beta", beta)
    if not np.all(a > 0):
        raise ValueError(f"`alpha` must be > 0. Received: alpha={alpha!r}")
    if not np.all((b >= 0) & (b < 1)):
        raise ValueError(f"`beta` must be in [0, 1). Received: beta={beta!r}")
    return a, b


def _check_eigenvalue(eigenvalue: Any) -> float:
    if isinstance(eigenvalue, bool) or not isinstance(
        eigenvalue, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"`eigenvalue` must be a number. Received: eigenvalue={eigenvalue!r}")
    if not (math.isfinite(eigenvalue) and eigenvalue > 0):
        raise ValueError(
            f"`eigenvalue` must be a finite number > 0. Received: eigenvalue={eigenvalue!r}"
        )
    return float(eigenvalue)


def _check_eigenvalues(eigenvalues: Any) -> tuple[float, ...]:
    try:
        values = tuple(eigenvalues)
    except TypeError:
        raise ValueError(
            "`eigenvalues` must be a sequence of numbers > 0. "
            f"Received: eigenvalues={eigenvalues!r}"
        ) from None
    if not values:
        raise ValueError(f"`eigenvalues` must not be empty. Received: eigenvalues={eigenvalues!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(
                f"`eigenvalues` must be numbers > 0. Received: eigenvalues={eigenvalues!r}"
            )
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"`eigenvalues` must be finite numbers > 0. Received: eigenvalues={eigenvalues!r}"
            )
    return tuple(float(v) for v in values)


# --- one eigenvalue ------------------------------------------------------------------------


def iteration_matrix(alpha: float, beta: float, eigenvalue: float) -> Array:
    """Goh's `R = [[β, λ], [-αβ, 1 - αλ]]`: one step of momentum along an eigenvector.

    It maps `(y_k, x_k)` (the velocity `z` and the position `w` along the eigenvector of
    `λ`) to `(y_{k+1}, x_{k+1})`.
    """
    a, b = _check(alpha, beta)
    if a.ndim or b.ndim:
        raise ValueError(
            f"`alpha` and `beta` must be single numbers. Received: alpha={alpha!r}, beta={beta!r}"
        )
    lam = _check_eigenvalue(eigenvalue)
    a_, b_ = float(a), float(b)
    return np.array([[b_, lam], [-a_ * b_, 1.0 - a_ * lam]], dtype=np.float64)


def eigenvalue_rate(alpha: Any, beta: Any, eigenvalue: float) -> Array:
    """`ρ(R)`, the spectral radius of Goh's `R` for one eigenvalue `λ` (element-wise).

    With `t = 1 + β - αλ`:

        ρ(R) = √β                         if t² < 4β   (complex eigenvalues)
        ρ(R) = (|t| + √(t² - 4β)) / 2     otherwise    (real eigenvalues)

    Args:
        alpha: The step size (the learning rate), > 0; a number or an array.
        beta: The momentum, in [0, 1); a number or an array broadcastable with `alpha`.
        eigenvalue: `λ > 0`.

    Returns:
        A float64 array of the broadcast shape (0-d for numbers).
    """
    a, b = _check(alpha, beta)
    lam = _check_eigenvalue(eigenvalue)
    t = 1.0 + b - a * lam
    discriminant = t * t - 4.0 * b
    real = (np.abs(t) + np.sqrt(np.maximum(discriminant, 0.0))) / 2.0
    return np.where(discriminant < 0, np.sqrt(b), real)


def eigenvalue_region(alpha: Any, beta: Any, eigenvalue: float) -> Array:
    """Goh's region of `(α, β)` for one eigenvalue `λ` (element-wise), from the closed forms:

        "divergence"   αλ >= 2 (1 + β)
        "oscillation"  (1 + √β)² <= αλ < 2 (1 + β)
        "ripples"      (1 - √β)² <  αλ < (1 + √β)²
        "monotonic"    αλ <= (1 - √β)²

    Returns:
        An array of region names (`REGIONS`), of the broadcast shape of `alpha` and `beta`.
    """
    a, b = _check(alpha, beta)
    lam = _check_eigenvalue(eigenvalue)
    step = a * lam
    root = np.sqrt(b)
    return np.select(
        [step >= 2.0 * (1.0 + b), step >= (1.0 + root) ** 2, step > (1.0 - root) ** 2],
        ["divergence", "oscillation", "ripples"],
        default="monotonic",
    )


# --- the quadratic ---------------------------------------------------------------------------


def convergence_rate(alpha: Any, beta: Any, eigenvalues: Sequence[float]) -> Array:
    """The rate of heavy-ball momentum on the quadratic: `max over λ of ρ(R_λ)`.

    After `k` steps the distance to the minimum is at most about `C · rate^k` (up to a factor
    polynomial in `k` where `R` has a double eigenvalue), and it is that for almost every
    start. `rate < 1` converges; `rate >= 1` does not.

    Args:
        alpha: The step size (learning rate) `α > 0`, a number or an array.
        beta: The momentum `β` in [0, 1), broadcastable with `alpha`.
        eigenvalues: The eigenvalues `λ > 0` of the quadratic's Hessian `A`.

    Returns:
        A float64 array of the broadcast shape of `alpha` and `beta`.
    """
    lams = _check_eigenvalues(eigenvalues)
    rates = [eigenvalue_rate(alpha, beta, lam) for lam in lams]
    return np.max(np.stack(rates), axis=0)


def region(alpha: Any, beta: Any, eigenvalues: Sequence[float]) -> Array:
    """The region of `(α, β)` on the quadratic: that of the direction that sets the rate.

    The eigenvector with the largest `ρ(R_λ)` decays slowest and so shapes the path after a
    few steps; its `eigenvalue_region` is the point's region (on a tie, the first such
    eigenvalue in the order given). A point where any direction diverges is "divergence".
    """
    lams = _check_eigenvalues(eigenvalues)
    rates = np.stack([eigenvalue_rate(alpha, beta, lam) for lam in lams])
    regions = np.stack([eigenvalue_region(alpha, beta, lam) for lam in lams])
    slowest = np.argmax(rates, axis=0)
    return np.take_along_axis(regions, slowest[np.newaxis], axis=0)[0]


@dataclass(frozen=True)
class OptimalMomentum:
    """The best step size and momentum for a quadratic, and the rate they give.

    Attributes:
        learning_rate: `α* = (2 / (√λ_1 + √λ_n))²`.
        momentum: `β* = ((√λ_n - √λ_1) / (√λ_n + √λ_1))²`.
        rate: `(√κ - 1) / (√κ + 1)` with `κ = λ_n / λ_1` (= √β*).
        condition_number: `κ`.
    """

    learning_rate: float
    momentum: float
    rate: float
    condition_number: float


def optimal_momentum(eigenvalues: Sequence[float]) -> OptimalMomentum:
    """Polyak's optimal heavy-ball parameters for eigenvalues `λ_1 <= ... <= λ_n` (Goh's
    "Optimal parameters"; see the module docstring). Only the extremes matter."""
    lams = _check_eigenvalues(eigenvalues)
    low, high = math.sqrt(min(lams)), math.sqrt(max(lams))
    kappa = max(lams) / min(lams)
    return OptimalMomentum(
        learning_rate=(2.0 / (low + high)) ** 2,
        momentum=((high - low) / (high + low)) ** 2,
        rate=(math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0),
        condition_number=kappa,
    )


# --- the map -----------------------------------------------------------------------------------


def rate_grid(
    eigenvalues: Sequence[float], learning_rates: npt.ArrayLike, momenta: npt.ArrayLike
) -> pd.DataFrame:
    """`convergence_rate` and `region` at every (learning rate, momentum) pair, for a map.

    Returns:
        One row per pair, learning rates varying fastest: `learning_rate`, `momentum`,
        `rate`, `region` (`region`), and `region_<i>` for each eigenvalue in turn
        (`eigenvalue_region` of the i-th, from 0).
    """
    lams = _check_eigenvalues(eigenvalues)
    rates_1d = _as_array("learning_rates", learning_rates)
    momenta_1d = _as_array("momenta", momenta)
    if rates_1d.ndim != 1 or not len(rates_1d):
        raise ValueError(
            "`learning_rates` must be a non-empty list. "
            f"Received: learning_rates={learning_rates!r}"
        )
    if momenta_1d.ndim != 1 or not len(momenta_1d):
        raise ValueError(f"`momenta` must be a non-empty list. Received: momenta={momenta!r}")
    alpha, beta = np.meshgrid(rates_1d, momenta_1d)
    frame = pd.DataFrame(
        {
            "learning_rate": alpha.ravel(),
            "momentum": beta.ravel(),
            "rate": convergence_rate(alpha, beta, lams).ravel(),
            "region": region(alpha, beta, lams).ravel(),
        }
    )
    for i, lam in enumerate(lams):
        frame[f"region_{i}"] = eigenvalue_region(alpha, beta, lam).ravel()
    return frame


BOUNDARIES: dict[str, str] = {
    "ripples": "monotonic | ripples: αλ = (1 - √β)²",
    "oscillation": "ripples | oscillation: αλ = (1 + √β)²",
    "divergence": "oscillation | divergence: αλ = 2 (1 + β)",
}
"""Each region's lower edge in αλ, named by the regions it separates and its formula."""


def region_boundaries(eigenvalues: Sequence[float], momenta: npt.ArrayLike) -> pd.DataFrame:
    """The curves where each eigenvalue's region changes, as `α(β)`, for the map's outlines.

    For each `λ` and each `β` of `momenta`: `α = (1 - √β)² / λ` (monotonic | ripples),
    `α = (1 + √β)² / λ` (ripples | oscillation) and `α = 2 (1 + β) / λ`
    (oscillation | divergence).

    Returns:
        Columns `eigenvalue`, `boundary` (the region above it: "ripples", "oscillation",
        "divergence"), `label` (`BOUNDARIES`), `momentum`, `learning_rate`.
    """
    lams = _check_eigenvalues(eigenvalues)
    betas = _as_array("momenta", momenta)
    if betas.ndim != 1 or not np.all((betas >= 0) & (betas < 1)):
        raise ValueError(
            f"`momenta` must be a list of numbers in [0, 1). Received: momenta={momenta!r}"
        )
    root = np.sqrt(betas)
    parts = []
    for lam in lams:
        for boundary, alpha in (
            ("ripples", (1.0 - root) ** 2 / lam),
            ("oscillation", (1.0 + root) ** 2 / lam),
            ("divergence", 2.0 * (1.0 + betas) / lam),
        ):
            parts.append(
                pd.DataFrame(
                    {
                        "eigenvalue": lam,
                        "boundary": boundary,
                        "label": BOUNDARIES[boundary],
                        "momentum": betas,
                        "learning_rate": alpha,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)
