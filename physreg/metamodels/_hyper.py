"""Hypernetwork metamodels of the 1-D and 2-D Fisher-KPP solution maps theta -> u(t, x[, y]).

A metamodel is an equinox module holding a *hypernetwork* ``h`` that maps the normalised
parameters ``theta'`` (each in [-1, 1]) to the weights of a small *target* network
``N_w(t', x')``; the solution is then read through an ansatz (scaled coordinates
``t' = (t - t0) / T``, ``x' = (x - x_lo) / L``)::

    u(t, x; theta) = H(t, x; D) + t' * N_{w(theta)}(t', x')

- ``H`` is the free-space heat kernel of the Gaussian introduction (centre ``c``, width ``w``,
  mass ``m``) with diffusion ``D``, made symmetric about both ends by its two nearest images:
  ``m * sum_{c' in (c, -c, 2 x_hi - c)} N(x; c', w^2 + 2 D t)``. At ``t = 0`` the factor ``t'``
  kills the network, so the initial condition is exact (up to the images' mass, below 1e-8
  for the bundled case).
- The target network's inputs are ``(2 t' - 1, cos(k pi x'), k = 1..modes)``: each feature has a
  zero x-derivative at both ends, so the network term satisfies the no-flux boundary condition
  exactly (``H``'s images make its flux at the ends vanish up to the far image, < 1e-4).

2-D (:class:`FKPPSetup2D`: a rectangle with no-flux walls, ``r(x, y) = r + sum_k r_<z_k>
z_k(x, y)`` with the covariate fields stored in the setup): ``H`` is the product of the x and y
image sums (the 2-D heat kernel of the Gaussian introduction, symmetric about the four walls),
and the target network reads ``(2 t' - 1, cos(k pi x'), cos(l pi y'))`` (optionally also the
covariate values and the distance to the introduction: ``features``). 2-D metamodels imitate
physreg's finite-volume solver on ``setup.grid`` cells (:func:`physreg.metamodels.solver_2d`).

Two hypernetworks (:class:`HyperPINN`, ``kind``):

- ``"full"``: ``h`` emits every weight and bias of the target network (the HyperPINN of de Avila
  Belbute-Peres et al. 2021).
- ``"lora"``: a shared base target network ``W0`` plus low-rank updates
  ``W_l = W0_l + A_l(theta) B_l(theta) / rank`` and bias shifts emitted by ``h`` (the HyperLoRA /
  Hyper-LR-PINN idea): far fewer hypernetwork outputs.

Parameters are normalised on the log scale for the positive rates ``D`` and ``gamma`` and
linearly for ``r``. A metamodel is valid only inside its training box: :meth:`HyperPINN.predict`
refuses a theta outside it with a ``ValueError``; :meth:`HyperPINN.evaluate` (jittable, used
inside samplers) does not check, so its callers keep proposals in the box (the MCMC estimator
sets its prior box to the metamodel box).

Save / load: :func:`save_metamodel` writes ``<stem>.eqx`` (equinox leaf serialisation) and
``<stem>.json`` (setup, architecture, training record); :func:`load_metamodel` rebuilds it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["FKPPSetup", "FKPPSetup2D", "HyperPINN", "save_metamodel", "load_metamodel",
           "KINDS", "FEATURES"]

KINDS = ("full", "lora")
FEATURES = ("covariate", "radius")  # optional extra inputs of a 2-D target network
OUTPUTS = ("linear", "log")  # u = H + t' N, or (2-D) u = H exp(LOG_SCALE t' N) > 0
LOG_SCALE = 10.0  # log(u / H) reaches about r (t - t0): O(10) over the bundled windows
LOG_CAP = 4.0  # log u is capped smoothly (sharpness 10) below this: u < e^4 = 55, no overflow
# while training; below log u = 2 (u = 7.4) the cap changes u by less than 1e-8
_RATES = ("D", "r", "gamma")
_LOG_SCALED = ("D", "gamma")


class _Box:
    """Box logic shared by the 1-D and 2-D setups (``names``, ``lower``, ``upper``, ``fixed``)."""

    def rates(self, theta) -> dict:
        """name -> value for D, r, gamma (and covariate coefficients) from a ``(p,)`` theta
        (fixed ones filled in)."""
        out = {n: theta[..., i] for i, n in enumerate(self.names)}
        out.update({n: v for n, v in self.fixed if n not in out})
        return out

    def normalise(self, theta):
        """theta (user units) -> theta' in [-1, 1] over the box (log scale for D, gamma)."""
        cols = []
        for i, n in enumerate(self.names):
            a, b, v = self.lower[i], self.upper[i], theta[..., i]
            if n in _LOG_SCALED:
                a, b, v = math.log(a), math.log(b), jnp.log(v)
            cols.append(2.0 * (v - a) / (b - a) - 1.0)
        return jnp.stack(cols, -1)

    def check(self, theta, what: str = "theta") -> np.ndarray:
        """Raise ``ValueError`` unless every row of ``theta`` is inside the box."""
        th = np.atleast_2d(np.asarray(theta, float))
        if th.shape[-1] != len(self.names):
            raise ValueError(f"{what} must have {len(self.names)} columns {self.names}, got "
                             f"shape {np.shape(theta)}.")
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        bad = ~np.all((th >= lo) & (th <= hi) & np.isfinite(th), -1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            box = {n: (a, b) for n, a, b in zip(self.names, self.lower, self.upper, strict=True)}
            raise ValueError(f"{what} {dict(zip(self.names, th[i].tolist(), strict=True))} is "
                             f"outside the metamodel's training box {box} ({int(bad.sum())} "
                             "row(s) outside): a metamodel does not extrapolate; retrain it on a "
                             "wider box or use the solver.")
        return th

    def _check_box(self, allowed):
        names = tuple(self.names)
        cls = type(self).__name__
        if not names or any(n not in allowed for n in names) or len(set(names)) != len(names):
            raise ValueError(f"{cls}.names must be distinct names from {allowed}, got {names!r}.")
        if len(self.lower) != len(names) or len(self.upper) != len(names):
            raise ValueError(f"{cls}.lower/upper need one value per name {names}, got "
                             f"{self.lower!r} and {self.upper!r}.")
        for n, a, b in zip(names, self.lower, self.upper, strict=True):
            if not (np.isfinite(a) and np.isfinite(b) and a < b):
                raise ValueError(f"{cls} box for {n!r} must have lower < upper, got ({a}, {b}).")
            if n in _LOG_SCALED and a <= 0:
                raise ValueError(f"{cls} box for {n!r} must be positive, got ({a}, {b}).")
        missing = [n for n in allowed if n not in names and n not in dict(self.fixed)]
        if missing:
            raise ValueError(f"{cls}: parameters {missing} are neither in `names` nor `fixed`; "
                             f"e.g. fixed=(('gamma', 1.0),).")


@dataclasses.dataclass(frozen=True)
class FKPPSetup(_Box):
    """The 1-D Fisher-KPP problem family a metamodel covers (hashable: a static field).

    **Arguments:**

    - `names`: parameters the metamodel takes, a subset of ``("D", "r", "gamma")`` in order.
    - `lower`, `upper`: the training box of those parameters (user units).
    - `fixed`: ``((name, value), ...)`` for the rates not in `names` (e.g. ``(("gamma", 1.0),)``).
    - `domain`: ``(x_lo, x_hi)``, no-flux ends.
    - `t0`, `t_max`: introduction time and end of the time window.
    - `ic`: ``(centre, width, mass)`` of the Gaussian introduction at `t0`.
    """

    names: tuple[str, ...] = ("D", "r")
    lower: tuple[float, ...] = (0.05, 0.5)
    upper: tuple[float, ...] = (0.2, 1.5)
    fixed: tuple[tuple[str, float], ...] = (("gamma", 1.0),)
    domain: tuple[float, float] = (0.0, 10.0)
    t0: float = 0.0
    t_max: float = 10.0
    ic: tuple[float, float, float] = (2.0, 0.3, 0.5)

    def __post_init__(self):
        self._check_box(_RATES)
        if not self.domain[0] < self.domain[1] or not self.t0 < self.t_max:
            raise ValueError(f"FKPPSetup: need domain[0] < domain[1] and t0 < t_max, got "
                             f"domain={self.domain}, t0={self.t0}, t_max={self.t_max}.")

    ndim = 1

    @property
    def length(self) -> float:
        return float(self.domain[1] - self.domain[0])

    @property
    def span(self) -> float:
        return float(self.t_max - self.t0)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["fixed"] = [list(p) for p in self.fixed]
        return d

    @classmethod
    def from_json(cls, d) -> FKPPSetup:
        return cls(names=tuple(d["names"]), lower=tuple(d["lower"]), upper=tuple(d["upper"]),
                   fixed=tuple((str(a), float(b)) for a, b in d["fixed"]),
                   domain=tuple(d["domain"]), t0=float(d["t0"]), t_max=float(d["t_max"]),
                   ic=tuple(d["ic"]))


@dataclasses.dataclass(frozen=True)
class FKPPSetup2D(_Box):
    """The 2-D Fisher-KPP problem family a metamodel covers (hashable: a static field).

    ``du/dt = D lap u + u (r(x, y) - gamma u)`` on a rectangle with no-flux walls, with
    ``r(x, y) = r + sum_k r_<z_k> z_k(x, y)``: the covariate fields are part of the setup (a
    metamodel is trained for one landscape), stored on their own grid and saved with it.

    **Arguments:**

    - `names`: parameters the metamodel takes, from ``("D", "r", "gamma")`` and
      ``"r_<covariate>"`` for each covariate, in order.
    - `lower`, `upper`: the training box of those parameters (user units).
    - `fixed`: ``((name, value), ...)`` for the parameters not in `names`.
    - `domain_x`, `domain_y`: the rectangle.
    - `t0`, `t_max`: introduction time and end of the time window.
    - `ic`: ``(x, y, width, mass)`` of the Gaussian introduction at `t0`.
    - `covariates`: names of the growth covariates; `cov_x` ``(nx,)``, `cov_y` ``(ny,)`` their
      grid and `cov_values` ``((ny rows of nx values), ...)`` one field per covariate (as the
      ``("y", "x")`` variables of a covariates dataset); between grid points the fields are
      bilinear, beyond the outermost points the edge value holds (as
      :func:`physreg.data.interpolate_covariates`).
    - `grid`: ``(ny, nx)`` cells of the finite-volume solver the metamodel imitates
      (:func:`physreg.metamodels.solver_snapshots`).

    Build one from a covariates dataset with :meth:`from_covariates`.
    """

    names: tuple[str, ...] = ("D", "r", "r_elevation")
    lower: tuple[float, ...] = (0.5, 0.5, -0.6)
    upper: tuple[float, ...] = (2.0, 1.5, 0.0)
    fixed: tuple[tuple[str, float], ...] = (("gamma", 1.0),)
    domain_x: tuple[float, float] = (0.0, 20.0)
    domain_y: tuple[float, float] = (0.0, 12.0)
    t0: float = 0.0
    t_max: float = 8.0
    ic: tuple[float, float, float, float] = (4.0, 6.0, 0.5, 5.0)
    covariates: tuple[str, ...] = ()
    cov_x: tuple[float, ...] = ()
    cov_y: tuple[float, ...] = ()
    cov_values: tuple = ()
    grid: tuple[int, int] = (24, 40)

    ndim = 2

    def __post_init__(self):
        allowed = _RATES + tuple(f"r_{c}" for c in self.covariates)
        self._check_box(allowed)
        for n, _ in self.fixed:
            if n not in allowed:
                raise ValueError(f"FKPPSetup2D.fixed: {n!r} is not one of {allowed}.")
        if not (self.domain_x[0] < self.domain_x[1] and self.domain_y[0] < self.domain_y[1]
                and self.t0 < self.t_max):
            raise ValueError(f"FKPPSetup2D: need a non-empty rectangle and t0 < t_max, got "
                             f"domain_x={self.domain_x}, domain_y={self.domain_y}, t0={self.t0}, "
                             f"t_max={self.t_max}.")
        if len(self.ic) != 4 or not (self.ic[2] > 0 and self.ic[3] > 0):
            raise ValueError(f"FKPPSetup2D.ic must be (x, y, width > 0, mass > 0), got {self.ic}.")
        if len(self.grid) != 2 or min(self.grid) < 3:
            raise ValueError(f"FKPPSetup2D.grid must be (ny, nx) with at least 3 cells each, got "
                             f"{self.grid}.")
        if self.covariates:
            nx, ny = len(self.cov_x), len(self.cov_y)
            vals = np.asarray(self.cov_values, float)
            if nx < 2 or ny < 2 or vals.shape != (len(self.covariates), ny, nx):
                raise ValueError(f"FKPPSetup2D: cov_values must hold one (ny={ny}, nx={nx}) field "
                                 f"per covariate {self.covariates} on a grid of at least 2 x 2, "
                                 f"got shape {vals.shape}.")
            if not (np.all(np.diff(self.cov_x) > 0) and np.all(np.diff(self.cov_y) > 0)
                    and np.all(np.isfinite(vals))):
                raise ValueError("FKPPSetup2D: cov_x and cov_y must increase strictly and the "
                                 "covariate values be finite.")

    # ------------------------------------------------------------------ geometry -------
    @property
    def length_x(self) -> float:
        return float(self.domain_x[1] - self.domain_x[0])

    @property
    def length_y(self) -> float:
        return float(self.domain_y[1] - self.domain_y[0])

    @property
    def span(self) -> float:
        return float(self.t_max - self.t0)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres ``(y, x)`` of the solver grid."""
        (ny, nx), (y0, y1), (x0, x1) = self.grid, self.domain_y, self.domain_x
        return (y0 + (y1 - y0) * (np.arange(ny) + 0.5) / ny,
                x0 + (x1 - x0) * (np.arange(nx) + 0.5) / nx)

    # ------------------------------------------------------------------ covariates -----
    @classmethod
    def from_covariates(cls, covariates, names=None, **kwargs) -> FKPPSetup2D:
        """A setup whose landscape is the ``("y", "x")`` variables of an xarray Dataset.

        `names` default: ``("D", "r") + ("r_<cov>", ...)``; the other keywords as the class
        (e.g. `lower`, `upper`, `fixed`, `domain_x`, `ic`, `grid`).
        """
        cov = covariates.transpose(..., "y", "x")
        covs = tuple(str(v) for v in cov.data_vars)
        vals = tuple(tuple(tuple(float(a) for a in row) for row in np.asarray(cov[c].values,
                                                                              float))
                     for c in covs)
        if names is None:
            names = ("D", "r") + tuple(f"r_{c}" for c in covs)
        return cls(names=tuple(names), covariates=covs,
                   cov_x=tuple(float(a) for a in cov["x"].values),
                   cov_y=tuple(float(a) for a in cov["y"].values), cov_values=vals, **kwargs)

    def covariate_dataset(self):
        """The covariates as an ``xarray.Dataset`` on ``("y", "x")`` (what the solver reads)."""
        import xarray as xr

        return xr.Dataset({c: (("y", "x"), np.asarray(v, float))
                           for c, v in zip(self.covariates, self.cov_values, strict=True)},
                          coords={"y": np.asarray(self.cov_y), "x": np.asarray(self.cov_x)})

    def covariate_at(self, x, y):
        """Covariate values at points ``(x, y)`` -> ``(n_cov, *shape)`` (bilinear, jittable)."""
        gx = jnp.asarray(self.cov_x)
        gy = jnp.asarray(self.cov_y)
        v = jnp.asarray(np.asarray(self.cov_values, float))
        xc = jnp.clip(x, gx[0], gx[-1])
        yc = jnp.clip(y, gy[0], gy[-1])
        i = jnp.clip(jnp.searchsorted(gx, xc) - 1, 0, gx.shape[0] - 2)
        j = jnp.clip(jnp.searchsorted(gy, yc) - 1, 0, gy.shape[0] - 2)
        fx = (xc - gx[i]) / (gx[i + 1] - gx[i])
        fy = (yc - gy[j]) / (gy[j + 1] - gy[j])
        return ((1 - fy) * ((1 - fx) * v[:, j, i] + fx * v[:, j, i + 1])
                + fy * ((1 - fx) * v[:, j + 1, i] + fx * v[:, j + 1, i + 1]))

    # ------------------------------------------------------------------ save / load ----
    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["fixed"] = [list(p) for p in self.fixed]
        d["ndim"] = 2
        return d

    @classmethod
    def from_json(cls, d) -> FKPPSetup2D:
        return cls(names=tuple(d["names"]), lower=tuple(d["lower"]), upper=tuple(d["upper"]),
                   fixed=tuple((str(a), float(b)) for a, b in d["fixed"]),
                   domain_x=tuple(d["domain_x"]), domain_y=tuple(d["domain_y"]),
                   t0=float(d["t0"]), t_max=float(d["t_max"]), ic=tuple(d["ic"]),
                   covariates=tuple(d["covariates"]), cov_x=tuple(d["cov_x"]),
                   cov_y=tuple(d["cov_y"]),
                   cov_values=tuple(tuple(tuple(float(a) for a in row) for row in f)
                                    for f in d["cov_values"]),
                   grid=tuple(int(n) for n in d["grid"]))


def setup_from_json(d) -> FKPPSetup | FKPPSetup2D:
    """The setup written by ``setup.to_json()`` (1-D records carry no ``ndim``)."""
    return FKPPSetup2D.from_json(d) if int(d.get("ndim", 1)) == 2 else FKPPSetup.from_json(d)


def _images(v, c, lo, hi, var):
    """Normal density of variance `var` about `c`, made even about `lo` and `hi` by its two
    nearest images (one axis)."""
    out = 0.0
    for centre in (c, 2.0 * lo - c, 2.0 * hi - c):
        out = out + jnp.exp(-0.5 * (v - centre) ** 2 / var)
    return out / jnp.sqrt(2.0 * jnp.pi * var)


def _log_images(v, c, lo, hi, var):
    """log of :func:`_images` (logsumexp: no underflow far from the introduction)."""
    terms = jnp.stack([-0.5 * (v - centre) ** 2 / var for centre in (c, 2.0 * lo - c,
                                                                       2.0 * hi - c)])
    return jax.scipy.special.logsumexp(terms, axis=0) - 0.5 * jnp.log(2.0 * jnp.pi * var)


def log_heat_kernel_2d(setup: FKPPSetup2D, t, x, y, D):
    """log of :func:`heat_kernel_2d`."""
    cx, cy, w, m = setup.ic
    var = w**2 + 2.0 * D * (t - setup.t0)
    return (math.log(m) + _log_images(x, cx, *setup.domain_x, var)
            + _log_images(y, cy, *setup.domain_y, var))


def heat_kernel_2d(setup: FKPPSetup2D, t, x, y, D):
    """2-D heat-kernel part ``H`` of the ansatz: the product of the two axes' image sums."""
    cx, cy, w, m = setup.ic
    var = w**2 + 2.0 * D * (t - setup.t0)
    return m * (_images(x, cx, *setup.domain_x, var) * _images(y, cy, *setup.domain_y, var))


def heat_kernel(setup: FKPPSetup, t, x, D):
    """Heat-kernel part ``H`` of the ansatz (see the module docstring), user units."""
    c, w, m = setup.ic
    lo, hi = setup.domain
    var = w**2 + 2.0 * D * (t - setup.t0)
    out = 0.0
    for centre in (c, 2.0 * lo - c, 2.0 * hi - c):
        out = out + jnp.exp(-0.5 * (x - centre) ** 2 / var)
    return m * out / jnp.sqrt(2.0 * jnp.pi * var)


def _tanh(x):
    # a module-level function (not jnp.tanh itself) so that metamodels pickle
    return jnp.tanh(x)


def _identity(x):
    return x


def _glorot(key, fan_in, fan_out, shape):
    lim = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, minval=-lim, maxval=lim)


class HyperPINN(eqx.Module):
    """Hypernetwork metamodel ``(theta, t, x) -> u`` (see the module docstring).

    Build with :meth:`HyperPINN.build`. Arrays are float32 (the network); :meth:`evaluate`
    returns float64.

    **Attributes:** `setup` (:class:`FKPPSetup`), `kind` (``"full"`` or ``"lora"``),
    `sizes` (target-network layer widths, input first), `modes`, `rank`, `hyper`
    (``eqx.nn.MLP``), `base` (LoRA base weights, else empty).
    """

    setup: FKPPSetup | FKPPSetup2D = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    sizes: tuple[int, ...] = eqx.field(static=True)
    modes: int = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    hyper_width: int = eqx.field(static=True)
    hyper_depth: int = eqx.field(static=True)
    hyper: eqx.nn.MLP
    base: tuple
    modes_y: int = eqx.field(static=True, default=0)
    features: tuple[str, ...] = eqx.field(static=True, default=())
    output: str = eqx.field(static=True, default="linear")

    # ------------------------------------------------------------------ construction -------
    @classmethod
    def build(cls, setup: FKPPSetup | FKPPSetup2D, *, kind: str = "full", width: int = 32,
              depth: int = 3, modes: int = 12, rank: int = 4, hyper_width: int = 64,
              hyper_depth: int = 2, modes_y: int = 0, features=(), output: str = "linear",
              key=None) -> HyperPINN:
        """A freshly initialised metamodel.

        **Arguments:** `setup` (:class:`FKPPSetup` or :class:`FKPPSetup2D`); `kind` ``"full"`` |
        ``"lora"``; target network `depth` hidden layers of `width` (tanh) on `modes` cosine
        features (in x; 2-D: and `modes_y` in y, default in proportion to the sides); `rank` of
        the LoRA updates; hypernetwork `hyper_depth` hidden layers of `hyper_width` (tanh);
        2-D `features`: extra target-network inputs from :data:`FEATURES` (``"covariate"``: the
        covariate values at the point, ``"radius"``: the distance to the introduction); 2-D
        `output`: ``"linear"`` (``u = H + t' N``) or ``"log"`` (``u = H exp(10 t' N)``,
        capped smoothly below 55, the network's last layer starting at 0:
        positive everywhere, and the network models relative corrections, so small densities,
        which weigh in count likelihoods, are as accurate as large ones); `key` (JAX key or
        int; default 0).

        **Raises:** ``ValueError`` for an unknown kind or feature, or non-positive sizes.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        for n, v in dict(width=width, depth=depth, modes=modes, rank=rank,
                         hyper_width=hyper_width, hyper_depth=hyper_depth).items():
            if not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"HyperPINN.build: {n} must be a positive integer, got {v!r}.")
        features = tuple(features)
        if output not in OUTPUTS:
            raise ValueError(f"HyperPINN.build: output must be one of {OUTPUTS}, got "
                             f"{output!r}.")
        if setup.ndim == 1:
            if modes_y or features or output != "linear":
                raise ValueError("HyperPINN.build: modes_y, features and output='log' are for "
                                 "2-D setups.")
            n_feat = 1 + modes
        else:
            bad = [f for f in features if f not in FEATURES]
            if bad or len(set(features)) != len(features):
                raise ValueError(f"HyperPINN.build: features must be distinct names from "
                                 f"{FEATURES}, got {features!r}.")
            if "covariate" in features and not setup.covariates:
                raise ValueError("HyperPINN.build: feature 'covariate' needs a setup with "
                                 "covariates.")
            if not modes_y:
                modes_y = max(1, round(modes * setup.length_y / setup.length_x))
            n_cov = len(setup.covariates) if "covariate" in features else 0
            n_feat = 1 + modes + int(modes_y) + n_cov + ("radius" in features)
        key = jax.random.key(0 if key is None else key) if isinstance(key, int | None) else key
        sizes = (n_feat,) + (width,) * depth + (1,)
        k_h, k_b = jax.random.split(key)
        shapes = list(zip(sizes[:-1], sizes[1:], strict=True))
        # a standard initialisation of the target network: the emitted weights at init (full)
        # or the shared base (lora)
        keys = jax.random.split(k_b, len(shapes))
        init = [(_glorot(k, a, b, (b, a)), jnp.zeros(b)) for k, (a, b) in zip(keys, shapes,
                                                                               strict=True)]
        if output == "log":
            # N = 0 at init (u = H): a random exponent exp(LOG_SCALE t' N) starts far off
            init[-1] = (init[-1][0] * 0.0, init[-1][1])
        if kind == "full":
            n_out = sum(a * b + b for a, b in shapes)
            bias0 = jnp.concatenate([jnp.concatenate([w.ravel(), b]) for w, b in init])
            base = ()
        else:
            n_out = sum(rank * (a + b) + b for a, b in shapes)
            parts = []
            kk = jax.random.split(jax.random.fold_in(k_b, 1), len(shapes))
            for k, (a, b) in zip(kk, shapes, strict=True):
                # LoRA convention: A = 0, B random, so W = W0 at init and both get gradients
                parts += [jnp.zeros(b * rank), jax.random.normal(k, (rank * a,)) / math.sqrt(a),
                          jnp.zeros(b)]
            bias0 = jnp.concatenate(parts)
            base = tuple(init)
        n_in = len(setup.names)
        hyper = eqx.nn.MLP(n_in, n_out, hyper_width, hyper_depth, activation=_tanh,
                           final_activation=_identity, key=k_h)
        last = hyper.layers[-1]
        last = eqx.tree_at(lambda m: (m.weight, m.bias), last,
                           (last.weight * 0.1, bias0.astype(last.bias.dtype)))
        hyper = eqx.tree_at(lambda m: m.layers[-1], hyper, last)
        out = cls(setup=setup, kind=kind, sizes=sizes, modes=int(modes), rank=int(rank),
                  hyper_width=int(hyper_width), hyper_depth=int(hyper_depth), hyper=hyper,
                  base=base, modes_y=int(modes_y), features=features, output=output)
        return jax.tree_util.tree_map(lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a)
                                      else a, out)

    @property
    def n_hyper_outputs(self) -> int:
        return int(self.hyper.layers[-1].bias.shape[0])

    @property
    def n_params(self) -> int:
        """Trainable scalars (hypernetwork + LoRA base)."""
        return int(sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(self,
                                                                           eqx.is_array))))

    def architecture(self) -> dict:
        out = {"kind": self.kind, "width": self.sizes[1], "depth": len(self.sizes) - 2,
               "modes": self.modes, "rank": self.rank, "hyper_width": self.hyper_width,
               "hyper_depth": self.hyper_depth}
        if self.setup.ndim == 2:
            out.update(modes_y=self.modes_y, features=list(self.features),
                       output=self.output)
        return out

    # ------------------------------------------------------------------ evaluation ---------
    def target_weights(self, theta):
        """Weights ``[(W_l, b_l), ...]`` of the target network at one theta (p,)."""
        th = self.setup.normalise(jnp.asarray(theta)).astype(jnp.float32)
        out = self.hyper(th)
        shapes = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        layers, i = [], 0
        if self.kind == "full":
            for a, b in shapes:
                w = out[i:i + a * b].reshape(b, a)
                i += a * b
                layers.append((w, out[i:i + b]))
                i += b
            return layers
        k = self.rank
        for (a, b), (w0, b0) in zip(shapes, self.base, strict=True):
            A = out[i:i + b * k].reshape(b, k)
            i += b * k
            B = out[i:i + k * a].reshape(k, a)
            i += k * a
            layers.append((w0 + A @ B / k, b0 + out[i:i + b]))
            i += b
        return layers

    def _features(self, tp, xp, yp=None, x=None, y=None):
        k = jnp.arange(1, self.modes + 1, dtype=jnp.float32)
        parts = [jnp.reshape(2.0 * tp - 1.0, (1,)), jnp.cos(jnp.pi * k * xp)]
        if yp is not None:
            ky = jnp.arange(1, self.modes_y + 1, dtype=jnp.float32)
            parts.append(jnp.cos(jnp.pi * ky * yp))
            s = self.setup
            if "covariate" in self.features:
                parts.append(s.covariate_at(x, y).astype(jnp.float32))
            if "radius" in self.features:
                rho = jnp.sqrt((x - s.ic[0]) ** 2 + (y - s.ic[1]) ** 2) / max(s.length_x,
                                                                             s.length_y)
                parts.append(jnp.reshape(2.0 * rho - 1.0, (1,)).astype(jnp.float32))
        return jnp.concatenate(parts)

    def _net(self, layers, tp, xp, yp=None, x=None, y=None):
        h = self._features(tp, xp, yp, x, y)
        for w, b in layers[:-1]:
            h = jnp.tanh(w @ h + b)
        w, b = layers[-1]
        return (w @ h + b)[0]

    def _u_point(self, layers, D, t, x):
        s = self.setup
        tp = ((t - s.t0) / s.span).astype(jnp.float32)
        xp = ((x - s.domain[0]) / s.length).astype(jnp.float32)
        return heat_kernel(s, t, x, D) + tp.astype(t.dtype) * self._net(layers, tp, xp).astype(
            t.dtype)

    def _u_point_2d(self, layers, D, t, x, y):
        s = self.setup
        tp = ((t - s.t0) / s.span).astype(jnp.float32)
        xp = ((x - s.domain_x[0]) / s.length_x).astype(jnp.float32)
        yp = ((y - s.domain_y[0]) / s.length_y).astype(jnp.float32)
        net = self._net(layers, tp, xp, yp, x, y).astype(t.dtype)
        if self.output == "log":
            logu = log_heat_kernel_2d(s, t, x, y, D) + LOG_SCALE * tp.astype(t.dtype) * net
            return jnp.exp(LOG_CAP - 0.1 * jax.nn.softplus(10.0 * (LOG_CAP - logu)))
        return heat_kernel_2d(s, t, x, y, D) + tp.astype(t.dtype) * net

    def evaluate(self, theta, t, x, y=None):
        """u at points ``(t, x)`` (2-D: ``(t, x, y)``; same shape) for one ``theta`` (p,), no
        box check (jittable).

        Returns a float64 array of the points' shape.
        """
        theta = jnp.asarray(theta)
        t = jnp.asarray(t, jnp.float64)
        x = jnp.asarray(x, jnp.float64)
        layers = self.target_weights(theta)
        D = jnp.asarray(self.setup.rates(theta)["D"], jnp.float64)
        if self.setup.ndim == 1:
            if y is not None:
                raise ValueError("a 1-D metamodel takes no y.")
            f = jax.vmap(lambda tt, xx: self._u_point(layers, D, tt, xx))
            return f(t.ravel(), x.ravel()).reshape(t.shape)
        if y is None:
            raise ValueError("a 2-D metamodel needs y as well as t and x.")
        y = jnp.asarray(y, jnp.float64)
        f = jax.vmap(lambda tt, xx, yy: self._u_point_2d(layers, D, tt, xx, yy))
        return f(t.ravel(), x.ravel(), y.ravel()).reshape(t.shape)

    def evaluate_grid(self, theta, t, x, y=None):
        """u on the grid ``t (n_t,) x x (n_x,)`` -> ``(n_t, n_x)``; 2-D: ``t x y (n_y,) x x``
        -> ``(n_t, n_y, n_x)``; no box check (jittable)."""
        if y is None:
            T, X = jnp.meshgrid(jnp.asarray(t, jnp.float64), jnp.asarray(x, jnp.float64),
                                indexing="ij")
            return self.evaluate(theta, T, X)
        T, Y, X = jnp.meshgrid(jnp.asarray(t, jnp.float64), jnp.asarray(y, jnp.float64),
                               jnp.asarray(x, jnp.float64), indexing="ij")
        return self.evaluate(theta, T, X, Y)

    def predict(self, theta, t, x, y=None):
        """u on the grid ``t x x`` (2-D: ``t x y x x``) for one theta ``(p,)`` or a batch
        ``(n, p)``.

        **Raises:** ``ValueError`` if a theta is outside the training box, or a time is outside
        ``[t0, t_max]``, or a site outside the domain (or y missing / given in the wrong
        dimension).
        """
        th = self.setup.check(theta)
        t, x = np.asarray(t, float), np.asarray(x, float)
        s = self.setup
        if np.any((t < s.t0) | (t > s.t_max)):
            raise ValueError(f"times must lie in the metamodel's window [{s.t0}, {s.t_max}].")
        if s.ndim == 1:
            if y is not None:
                raise ValueError("a 1-D metamodel takes no y.")
            if np.any((x < s.domain[0]) | (x > s.domain[1])):
                raise ValueError(f"sites must lie in the metamodel's domain {s.domain}.")
            out = _predict_batch(self, jnp.asarray(th), jnp.asarray(t), jnp.asarray(x))
        else:
            if y is None:
                raise ValueError("a 2-D metamodel needs y as well as t and x.")
            y = np.asarray(y, float)
            if (np.any((x < s.domain_x[0]) | (x > s.domain_x[1]))
                    or np.any((y < s.domain_y[0]) | (y > s.domain_y[1]))):
                raise ValueError(f"sites must lie in the metamodel's rectangle x in "
                                 f"{s.domain_x}, y in {s.domain_y}.")
            out = _predict_batch_2d(self, jnp.asarray(th), jnp.asarray(t), jnp.asarray(x),
                                    jnp.asarray(y))
        out = np.asarray(out)
        return out if np.ndim(theta) == 2 else out[0]

    def rates(self, theta) -> dict:
        return self.setup.rates(theta)


@eqx.filter_jit
def _predict_batch(model, theta, t, x):
    return jax.vmap(lambda th: model.evaluate_grid(th, t, x))(theta)


@eqx.filter_jit
def _predict_batch_2d(model, theta, t, x, y):
    return jax.lax.map(lambda th: model.evaluate_grid(th, t, x, y), theta)


# ---------------------------------------------------------------------- save / load -------
def _stem(path) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".eqx", ".json") else p


def save_metamodel(model: HyperPINN, path, info: dict | None = None) -> Path:
    """Write ``<stem>.eqx`` (weights) and ``<stem>.json`` (setup, architecture, `info`).

    Returns the stem path.
    """
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    eqx.tree_serialise_leaves(stem.with_suffix(".eqx"), model)
    meta = {"format": "physreg.metamodels.HyperPINN/1", "setup": model.setup.to_json(),
            "architecture": model.architecture(), "n_params": model.n_params,
            "info": info or {}}
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=float))
    return stem


def load_metamodel(path) -> HyperPINN:
    """Rebuild a metamodel written by :func:`save_metamodel` (``path``: stem, .eqx or .json).

    **Raises:** ``FileNotFoundError`` when either file is missing; ``ValueError`` for a JSON of
    another format.
    """
    stem = _stem(path)
    for suffix in (".json", ".eqx"):
        if not stem.with_suffix(suffix).is_file():
            raise FileNotFoundError(f"metamodel file {stem.with_suffix(suffix)} not found "
                                    "(save_metamodel writes both <stem>.eqx and <stem>.json).")
    meta = json.loads(stem.with_suffix(".json").read_text())
    if meta.get("format") != "physreg.metamodels.HyperPINN/1":
        raise ValueError(f"{stem.with_suffix('.json')} is not a physreg metamodel "
                         f"(format {meta.get('format')!r}).")
    skeleton = HyperPINN.build(setup_from_json(meta["setup"]), **meta["architecture"])
    return eqx.tree_deserialise_leaves(stem.with_suffix(".eqx"), skeleton)


def load_info(path) -> dict:
    """The JSON record of a saved metamodel (setup, architecture, training info)."""
    return json.loads(_stem(path).with_suffix(".json").read_text())
