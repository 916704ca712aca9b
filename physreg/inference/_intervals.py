"""Frequentist intervals shared by the solver and PINN estimators: Wald, profile, bootstrap.

All work on an objective ``nll(z, data)`` over the flat unconstrained vector ``z`` (the
*negative log-likelihood*, or a penalised version of it) and a :class:`~physreg.model.ParameterSpace`
that maps ``z`` back to user units. Intervals are formed on the unconstrained scale (log for
positive parameters) and mapped back, so they respect positivity and are equivariant.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from ._optimize import batch_map, conditional_whitening, minimize


def chi2_threshold(level: float) -> float:
    """Half-width of the deviance at ``level``: the chi-square(1) quantile."""
    _check_level(level)
    return float(stats.chi2.ppf(level, df=1))


def _check_level(level):
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")


# ------------------------------------------------------------------------------------------
# Wald
# ------------------------------------------------------------------------------------------
class WaldResult(NamedTuple):
    hessian: np.ndarray  # of the negative log-likelihood at z_hat
    cov: np.ndarray  # covariance of z (unconstrained)
    se: np.ndarray  # standard errors of z
    lower: np.ndarray  # interval in z
    upper: np.ndarray
    positive_definite: bool


@eqx.filter_jit
def _grad(nll, z, data):
    return jax.grad(nll)(z, data)


def hessian_fd(nll, z, data, step: float = 1e-4) -> np.ndarray:
    """Hessian by central differences of the (autodiff) gradient, symmetrised.

    2p gradient evaluations with one compiled gradient; forward-over-reverse ``jax.hessian``
    through the solver's checkpointed time loop costs several times more to compile than these
    evaluations take. The truncation error is O(step^2) relative (step on the unconstrained
    scale, where parameters are O(1)).
    """
    z = jnp.asarray(z)
    p = z.shape[0]
    cols = []
    for j in range(p):
        e = jnp.zeros(p).at[j].set(step)
        cols.append((np.asarray(_grad(nll, z + e, data)) - np.asarray(_grad(nll, z - e, data)))
                    / (2 * step))
    H = np.stack(cols, axis=1)
    return 0.5 * (H + H.T)


def wald(nll, z_hat, data, level: float = 0.95, hessian=None) -> WaldResult:
    """Wald intervals ``z_hat +- q se`` from the Hessian of ``nll`` at the optimum.

    A Hessian that is not positive definite (a flat or saddle direction: the parameter is not
    identified by the data) gives NaN standard errors for the affected directions and a warning.
    """
    _check_level(level)
    H = np.asarray(hessian_fd(nll, z_hat, data) if hessian is None else hessian)
    H = 0.5 * (H + H.T)
    eig = np.linalg.eigvalsh(H)
    pd = bool(np.all(eig > 1e-12 * max(1.0, np.abs(eig).max())))
    if pd:
        cov = np.linalg.inv(H)
    else:
        warnings.warn("The Hessian of the negative log-likelihood is not positive definite at the "
                      "estimate: some parameters are not identified by these data; their Wald "
                      "standard errors are NaN.", UserWarning, stacklevel=3)
        cov = np.linalg.pinv(H)
        bad = np.diag(cov) <= 0
        cov[bad, :] = np.nan
        cov[:, bad] = np.nan
    se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    q = stats.norm.ppf(0.5 + level / 2)
    z = np.asarray(z_hat)
    return WaldResult(H, cov, se, z - q * se, z + q * se, pd)


# ------------------------------------------------------------------------------------------
# Profile likelihood
# ------------------------------------------------------------------------------------------
class ProfileResult(NamedTuple):
    """Profiles of every free parameter.

    ``grid`` (p, m): values of z_j (unconstrained) where the profile was computed, sorted;
    ``deviance`` (p, m): 2 (nll_profile - nll_hat); ``lower``/``upper`` (p,): crossings of the
    chi-square threshold in z (inf/-inf when the profile never reaches it on that side: the data
    do not bound the parameter there); ``converged`` (p, m).
    """

    grid: np.ndarray
    deviance: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    converged: np.ndarray
    threshold: float


def profile(nll, z_hat, data, se, level: float = 0.95, *, n_points: int = 6,
            max_sd: float = 4.0, max_steps: int = 300, refit: Callable | None = None,
            nll_hat=None, rtol: float = 1e-7, atol: float = 1e-7,
            which=None, hessian=None) -> ProfileResult:
    """Profile likelihood of every component of ``z`` on a grid around the estimate.

    For each parameter j and each side, the grid runs outward from ``z_hat_j`` in ``n_points``
    steps up to ``max_sd`` Wald standard errors; every point re-optimises the other parameters,
    warm-started from the previous point (``lax.scan``); the 2p outward scans run in one batch
    (``vmap``). The crossing of the threshold is found by linear interpolation of the signed root
    deviance, which is close to linear in z.

    ``refit(z_start, mask, fixed, data) -> (z, nll, converged)`` replaces the default BFGS
    re-optimisation (the PINN estimator passes its own training loop). ``which``: indices of
    the parameters to profile (default all); the others get NaN rows. ``hessian``: of ``nll``
    at ``z_hat``; when given, each re-optimisation is whitened by the conditional Hessian
    (see :func:`~physreg.inference.minimize`), which cuts the BFGS iterations several-fold.
    """
    thr = chi2_threshold(level)
    z_hat = jnp.asarray(z_hat)
    p = z_hat.shape[0]
    se = np.where(np.isfinite(se) & (np.asarray(se) > 0), se, 1.0)
    f_hat = nll(z_hat, data) if nll_hat is None else nll_hat
    steps = jnp.linspace(max_sd / n_points, max_sd, n_points)
    which = np.arange(p) if which is None else np.asarray(which, int)
    js = jnp.repeat(jnp.asarray(which), 2)
    signs = jnp.tile(jnp.array([-1.0, 1.0]), len(which))
    if hessian is not None:
        pre = np.stack([conditional_whitening(hessian, int(j)) for j in np.asarray(js)])
    else:
        pre = np.stack([np.diag(np.where(np.arange(p) == int(j), 0.0, se))
                        for j in np.asarray(js)])
    out = _profile_scans(nll, refit, z_hat, data, jnp.asarray(se, float), steps, js, signs,
                         jnp.asarray(pre), rtol=rtol, atol=atol, max_steps=max_steps)
    zj_, f_, ok_ = (np.asarray(a).reshape(len(which), 2, n_points) for a in out)
    zj = np.full((p, 2, n_points), np.nan)
    f = np.full((p, 2, n_points), np.nan)
    ok = np.zeros((p, 2, n_points), bool)
    zj[which], f[which], ok[which] = zj_, f_, ok_
    dev = 2.0 * (f - float(f_hat))
    grid = np.concatenate([zj[:, 0, ::-1], np.asarray(z_hat)[:, None], zj[:, 1]], axis=1)
    deviance = np.concatenate([dev[:, 0, ::-1], np.zeros((p, 1)), dev[:, 1]], axis=1)
    conv = np.concatenate([ok[:, 0, ::-1], np.ones((p, 1), bool), ok[:, 1]], axis=1)
    lower = np.full(p, np.nan)
    upper = np.full(p, np.nan)
    for j in which:
        lower[j], upper[j] = _crossings(grid[j], deviance[j], conv[j], float(z_hat[j]), thr)
    if np.any(deviance < -1e-3 * max(1.0, thr)):
        warnings.warn("The profile went below the optimum: the fit had not reached the maximum "
                      "likelihood; intervals are approximate. Refit with more starts.",
                      UserWarning, stacklevel=2)
    return ProfileResult(grid, deviance, lower, upper, conv, thr)


@eqx.filter_jit
def _profile_scans(nll, refit, z_hat, data, se, steps, js, signs, pre, *, rtol, atol,
                   max_steps):
    """The outward scans of every (parameter, side) pair, batched; compiled once per problem
    structure (``nll`` is a pytree, e.g. a bound method of an equinox module)."""
    p = z_hat.shape[0]
    def outward(j, sign, P):
        if refit is None:

            def fit(z0, mask, fixed, d):
                r = minimize(nll, z0, d, mask=mask, fixed=fixed, max_steps=max_steps,
                             rtol=rtol, atol=atol, precond=P)
                return r.x, r.fun, r.converged
        else:
            fit = refit
        mask = jnp.arange(p) == j

        def body(z, k):
            zj = z_hat[j] + sign * k * se[j]
            z0 = jnp.where(mask, zj, z)
            z1, f, ok = fit(z0, mask, z0, data)
            return jnp.where(ok, z1, z), (zj, f, ok)

        _, out = jax.lax.scan(body, z_hat, steps)
        return out

    return batch_map(lambda a: outward(*a), (js, signs, pre))


def _crossings(z, dev, ok, z0, thr):
    """Where the signed root deviance crosses +-sqrt(thr), by linear interpolation."""
    q = np.sqrt(thr)
    keep = ok & np.isfinite(dev)
    z, dev = z[keep], np.maximum(dev[keep], 0.0)
    root = np.sign(z - z0) * np.sqrt(dev)
    out = []
    for side in (-1, 1):
        sel = (np.sign(z - z0) == side) | (z == z0)
        zs, rs = z[sel], root[sel]
        order = np.argsort(side * zs)
        zs, rs = zs[order], side * rs[order]  # outward, increasing root
        hit = np.nonzero(rs >= q)[0]
        if len(hit) == 0:
            out.append(side * np.inf)
            continue
        k = hit[0]
        if k == 0:
            out.append(zs[0])
            continue
        a, b = rs[k - 1], rs[k]
        t = (q - a) / (b - a) if b != a else 0.0
        out.append(zs[k - 1] + t * (zs[k] - zs[k - 1]))
    return out[0], out[1]


# ------------------------------------------------------------------------------------------
# Bootstrap
# ------------------------------------------------------------------------------------------
def bootstrap_intervals(z_boot, z_hat, level: float = 0.95, kind: str = "percentile"):
    """Percentile or basic bootstrap intervals on the unconstrained scale.

    ``z_boot`` (B, p) refitted estimates (rows with NaN — failed refits — are dropped).
    percentile: the (a/2, 1-a/2) quantiles of z*; basic: 2 z_hat - those quantiles reversed.
    """
    _check_level(level)
    z_boot = np.asarray(z_boot)
    z_boot = z_boot[np.all(np.isfinite(z_boot), axis=1)]
    if len(z_boot) < 10:
        raise ValueError(f"Only {len(z_boot)} bootstrap refits succeeded; at least 10 are needed.")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(z_boot, [a, 1.0 - a], axis=0)
    if kind == "percentile":
        return lo, hi
    if kind == "basic":
        z = np.asarray(z_hat)
        return 2 * z - hi, 2 * z - lo
    raise ValueError(f"kind must be 'percentile' or 'basic', got {kind!r}.")


def widen_for_noise(lo, hi, sd, level: float = 0.95):
    """Widen intervals (unconstrained scale) for independent noise of standard deviation
    ``sd`` added to the estimator: each end moves out by ``sqrt(h^2 + (q sd)^2) - h``, ``h``
    the half-width and ``q`` the normal quantile of ``level``. A normal interval of sd
    ``h / q`` becomes that of sd ``sqrt((h / q)^2 + sd^2)``; an asymmetric one keeps its
    asymmetry. Infinite ends stay infinite. Arrays broadcast; ``sd >= 0``."""
    _check_level(level)
    lo, hi, sd = (np.asarray(v, dtype=float) for v in (lo, hi, sd))
    if np.any(sd < 0) or not np.all(np.isfinite(sd)):
        raise ValueError(f"sd must be finite and >= 0, got {sd}.")
    q = stats.norm.ppf(0.5 + level / 2.0)
    with np.errstate(invalid="ignore"):
        h = np.where(np.isfinite(lo) & np.isfinite(hi), (hi - lo) / 2.0, 0.0)
        delta = np.sqrt(h ** 2 + (q * sd) ** 2) - h
    return lo - delta, hi + delta


def resample_weights(key, n_obs: int, n_boot: int, blocks=None):
    """Non-parametric bootstrap as observation weights (multinomial counts).

    ``blocks`` (n_obs,) integer labels: resample whole blocks (e.g. time slices) with
    replacement, so that dependence within a block is kept.
    """
    if blocks is None:
        idx = jax.random.randint(key, (n_boot, n_obs), 0, n_obs)
        return jax.vmap(lambda i: jnp.zeros(n_obs).at[i].add(1.0))(idx)
    labels, inv = np.unique(np.asarray(blocks), return_inverse=True)
    nb = len(labels)
    idx = jax.random.randint(key, (n_boot, nb), 0, nb)
    counts = jax.vmap(lambda i: jnp.zeros(nb).at[i].add(1.0))(idx)
    return counts[:, jnp.asarray(inv)]
