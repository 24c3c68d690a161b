"""keras_sgdplus/lab/momentum_rates.py against independent references: the momentum recursion
iterated in NumPy on the quadratic (its measured decay), numpy.linalg.eigvals of the full
4x4 step matrix, eigenvalue signs for the regions, and a brute-force search for the optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_sgdplus.lab import momentum_rates as mr
from keras_sgdplus.lab.landscapes import LANDSCAPES

RAVINE = (1.0, 25.0)
# Settings across every region on the ravine (α, β): from slow and monotonic to divergent.
SETTINGS = [
    (0.01, 0.0),
    (0.03, 0.8),
    (0.02, 0.9),
    (0.075, 0.0),
    (0.1, 0.5),
    (0.05, 0.3),
    (0.12, 0.2),
    (0.005, 0.95),
    (0.15, 0.6),
]


def full_step_matrix(alpha: float, beta: float, eigenvalues=RAVINE) -> np.ndarray:
    """Keras's momentum step on f = ½ wᵀAw as one linear map of the state (w, v):
    v' = βv - αAw, w' = w + v' = (I - αA) w + βv."""
    a = np.diag(eigenvalues)
    eye = np.eye(len(eigenvalues))
    return np.block([[eye - alpha * a, beta * eye], [-alpha * a, beta * eye]])


def measured_rate(alpha: float, beta: float, steps: int = 4000, eigenvalues=RAVINE) -> float:
    """The decay per step of ‖(w, v)‖, iterating v ← βv − α∇f(w); w ← w + v in NumPy from a
    generic start, renormalising each step, averaged over the second half of the run."""
    a = np.asarray(eigenvalues)
    w = np.array([-8.0, 1.5])[: len(a)]
    v = np.zeros_like(w)
    log_growth = []
    for _ in range(steps):
        v = beta * v - alpha * (a * w)
        w = w + v
        norm = math.hypot(*w, *v)
        log_growth.append(math.log(norm))
        w, v = w / norm, v / norm
    return math.exp(np.mean(log_growth[steps // 2 :]))


def test_the_ravine_has_eigenvalues_1_and_25():
    """The quadratic the map is drawn for is the landscape's own: ∇f = A (x, y)."""
    ravine = LANDSCAPES["ravine"]
    points = np.random.default_rng(0).normal(size=(2, 5))
    gx, gy = ravine.gradient(points[0], points[1])
    np.testing.assert_allclose(gx, RAVINE[0] * points[0])
    np.testing.assert_allclose(gy, RAVINE[1] * points[1])


def test_iteration_matrix_is_gohs_r():
    r = mr.iteration_matrix(0.1, 0.5, 25.0)
    np.testing.assert_array_equal(r, [[0.5, 25.0], [-0.05, 1 - 2.5]])
    # R applied to (z, w) along one eigenvector is one step of z' = βz + λw; w' = w − αz'.
    z, w = 0.3, -1.2
    z_next = 0.5 * z + 25.0 * w
    np.testing.assert_allclose(r @ [z, w], [z_next, w - 0.1 * z_next])


@pytest.mark.parametrize(("alpha", "beta"), SETTINGS)
def test_rate_is_the_spectral_radius_of_the_full_step(alpha, beta):
    expected = np.max(np.abs(np.linalg.eigvals(full_step_matrix(alpha, beta))))
    assert mr.convergence_rate(alpha, beta, RAVINE) == pytest.approx(expected, rel=1e-6)
    for lam in RAVINE:
        radius = np.max(np.abs(np.linalg.eigvals(mr.iteration_matrix(alpha, beta, lam))))
        assert mr.eigenvalue_rate(alpha, beta, lam) == pytest.approx(radius, rel=1e-6)


@pytest.mark.parametrize(("alpha", "beta"), SETTINGS)
def test_rate_is_the_measured_decay_of_the_momentum_recursion(alpha, beta):
    rate = float(mr.convergence_rate(alpha, beta, RAVINE))
    measured = measured_rate(alpha, beta)
    assert measured == pytest.approx(rate, rel=2e-3)
    assert (measured < 1) == (mr.region(alpha, beta, RAVINE) != "divergence")


def test_rate_broadcasts_over_arrays():
    alphas = np.array([s[0] for s in SETTINGS])
    betas = np.array([s[1] for s in SETTINGS])
    rates = mr.convergence_rate(alphas, betas, RAVINE)
    assert rates.shape == (len(SETTINGS),)
    for rate, (alpha, beta) in zip(rates, SETTINGS, strict=True):
        assert rate == mr.convergence_rate(alpha, beta, RAVINE)


def eigen_signs(alpha: float, beta: float, lam: float) -> str:
    """The region from R's eigenvalues computed by NumPy (Goh's taxonomy, not the closed forms)."""
    sigma = np.linalg.eigvals(mr.iteration_matrix(alpha, beta, lam))
    if np.max(np.abs(sigma)) >= 1:
        return "divergence"
    if np.any(np.abs(sigma.imag) > 1e-12):
        return "ripples"
    return "monotonic" if np.all(sigma.real >= 0) else "oscillation"


def test_regions_match_the_eigenvalues_of_r_away_from_the_boundaries():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(3000):
        alpha, beta, lam = rng.uniform(1e-4, 0.2), rng.uniform(0, 0.999), rng.choice(RAVINE)
        step, root = alpha * lam, math.sqrt(beta)
        edges = [(1 - root) ** 2, (1 + root) ** 2, 2 * (1 + beta)]
        if min(abs(step - edge) for edge in edges) < 1e-6:
            continue  # on an edge NumPy's rounding decides; the closed forms say which side
        expected = eigen_signs(alpha, beta, lam)
        assert mr.eigenvalue_region(alpha, beta, lam) == expected, (alpha, beta, lam)
        seen.add(expected)
    assert seen == set(mr.REGIONS)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.4444, 0.8, 0.95])
def test_region_boundaries_are_gohs_closed_forms(beta):
    """Just inside and just outside each closed-form edge, for both eigenvalues."""
    root = math.sqrt(beta)
    for lam in RAVINE:
        edges = {
            "ripples": (1 - root) ** 2 / lam,
            "oscillation": (1 + root) ** 2 / lam,
            "divergence": 2 * (1 + beta) / lam,
        }
        below = {"ripples": "monotonic", "oscillation": "ripples", "divergence": "oscillation"}
        for above, alpha in edges.items():
            if beta == 0 and above != "divergence":
                continue  # no ripples at β = 0: both edges are αλ = 1 (checked below)
            eps = 1e-7 * alpha
            assert eigen_signs(alpha - eps, beta, lam) == below[above]
            assert eigen_signs(alpha + eps, beta, lam) == above
            assert mr.eigenvalue_region(alpha - eps, beta, lam) == below[above]
            assert mr.eigenvalue_region(alpha + eps, beta, lam) == above
        if beta == 0:
            # Plain gradient descent: monotonic up to αλ = 1, then the sign flips.
            for side, region in ((1 - 1e-7, "monotonic"), (1 + 1e-7, "oscillation")):
                assert eigen_signs(side / lam, beta, lam) == region
                assert mr.eigenvalue_region(side / lam, beta, lam) == region
        frame = mr.region_boundaries(RAVINE, [beta])
        for above, alpha in edges.items():
            row = frame[(frame["eigenvalue"] == lam) & (frame["boundary"] == above)]
            assert float(row["learning_rate"].iloc[0]) == pytest.approx(alpha)


def test_the_rate_in_the_ripples_is_the_square_root_of_the_momentum():
    # Goh: with complex eigenvalues the rate is √β, whatever the step size.
    for alpha in (0.06, 0.08, 0.1):
        lam = 25.0
        assert mr.eigenvalue_region(alpha, 0.5, lam) == "ripples"
        assert mr.eigenvalue_rate(alpha, 0.5, lam) == pytest.approx(math.sqrt(0.5))


def test_one_step_convergence_at_alpha_one_over_lambda():
    assert mr.eigenvalue_rate(1 / 25, 0.0, 25.0) == pytest.approx(0.0, abs=1e-12)


def test_region_of_the_quadratic_is_that_of_its_slowest_direction():
    # α = 0.03, β = 0.8: λ = 1 (rate √0.8, complex) and λ = 25 (ripples too) → ripples.
    assert mr.region(0.03, 0.8, RAVINE) == "ripples"
    # α = 0.075, β = 0: λ = 1 decays by 0.925 (monotonic), λ = 25 by |1 - 1.875| = 0.875
    # (oscillation): the slow direction wins.
    assert mr.eigenvalue_region(0.075, 0.0, 25.0) == "oscillation"
    assert mr.region(0.075, 0.0, RAVINE) == "monotonic"
    # Any diverging direction makes the point diverge.
    assert mr.region(0.1, 0.0, RAVINE) == "divergence"


def test_the_optimal_pair_is_polyaks_formula():
    best = mr.optimal_momentum(RAVINE)
    low, high = math.sqrt(min(RAVINE)), math.sqrt(max(RAVINE))
    assert best.learning_rate == pytest.approx((2 / (low + high)) ** 2)
    assert best.momentum == pytest.approx(((high - low) / (high + low)) ** 2)
    kappa = max(RAVINE) / min(RAVINE)
    assert best.rate == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1))
    assert best.condition_number == kappa
    assert float(mr.convergence_rate(best.learning_rate, best.momentum, RAVINE)) == pytest.approx(
        best.rate
    )
    # Only the extremes matter.
    assert mr.optimal_momentum((25.0, 4.0, 1.0, 9.0)) == best


def test_the_optimal_pair_beats_every_point_of_a_fine_grid():
    best = mr.optimal_momentum(RAVINE)
    alphas = np.linspace(0.001, 0.16, 641)
    betas = np.linspace(0.0, 0.99, 991)
    grid = mr.rate_grid(RAVINE, alphas, betas)
    i = int(np.argmin(grid["rate"]))
    # Nothing on the grid is faster than the optimum, and the grid's best is next to it.
    assert grid["rate"].min() >= best.rate - 1e-12
    assert grid["rate"].min() == pytest.approx(best.rate, abs=0.02)
    assert grid["learning_rate"].iloc[i] == pytest.approx(best.learning_rate, abs=0.01)
    assert grid["momentum"].iloc[i] == pytest.approx(best.momentum, abs=0.03)
    # The optimum is the best in the measured decay too.
    measured = measured_rate(best.learning_rate, best.momentum, steps=6000)
    for alpha, beta in [(0.1, 0.4444), (0.12, 0.45), (0.11, 0.5), (0.0111, 0.0)]:
        assert measured_rate(alpha, beta) > measured - 1e-3


def test_rate_grid_rows_and_columns():
    grid = mr.rate_grid(RAVINE, [0.01, 0.05, 0.1], [0.0, 0.9])
    assert len(grid) == 6
    assert list(grid.columns) == [
        "learning_rate",
        "momentum",
        "rate",
        "region",
        "region_0",
        "region_1",
    ]
    for row in grid.itertuples():
        assert row.rate == mr.convergence_rate(row.learning_rate, row.momentum, RAVINE)
        assert row.region == mr.region(row.learning_rate, row.momentum, RAVINE)
        assert row.region_1 == mr.eigenvalue_region(row.learning_rate, row.momentum, 25.0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: mr.convergence_rate(0.1, 1.5, RAVINE),
            "`beta` must be in [0, 1). Received: beta=1.5",
        ),
        (lambda: mr.convergence_rate(0.0, 0.5, RAVINE), "`alpha` must be > 0. Received: alpha=0.0"),
        (lambda: mr.convergence_rate(True, 0.5, RAVINE), "`alpha` must be a number"),
        (lambda: mr.convergence_rate(0.1, math.nan, RAVINE), "`beta` must be finite"),
        (lambda: mr.convergence_rate(0.1, 0.5, ()), "`eigenvalues` must not be empty"),
        (lambda: mr.convergence_rate(0.1, 0.5, (1.0, -2.0)), "`eigenvalues` must be finite"),
        (lambda: mr.eigenvalue_rate(0.1, 0.5, 0), "`eigenvalue` must be a finite number > 0"),
        (lambda: mr.optimal_momentum("ab"), "`eigenvalues` must be numbers"),
        (lambda: mr.rate_grid(RAVINE, [], [0.5]), "`learning_rates` must be a non-empty list"),
        (lambda: mr.region_boundaries(RAVINE, [1.0]), "`momenta` must be a list of numbers in"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=f"^{__import__('re').escape(message)}"):
        call()
