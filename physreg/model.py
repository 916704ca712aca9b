"""Model specification: the reaction-diffusion equation, its parameters and their links.

    du/dt = div(D(x) grad u) + u (r(x) - gamma u)

on a 1-D interval or a 2-D rectangle, with

    log D(x) = log D + sum_k D_<z_k> z_k(x)        (``Link("log", covariates)``)
        r(x) = r + sum_k r_<z_k> z_k(x)            (``Link("identity", covariates)``)

and either ``gamma`` or a carrying capacity ``K`` (gamma(x) = r(x) / K).

Parameters have names (``D``, ``r``, ``gamma`` or ``K``, ``D_<cov>``, ``r_<cov>``, initial-condition
names ``ic_*``, observation nuisances), bounds in user units and a transform to an unconstrained
scale (``log`` for positive quantities). :class:`ParameterSpace` packs and unpacks them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

__all__ = [
    "Domain",
    "Link",
    "InitialCondition",
    "InitialField",
    "FirstObservation",
    "GaussianIntroductions",
    "ReactionDiffusion",
    "ParameterSpace",
]


# --------------------------------------------------------------------------------------------
# Domain
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Domain:
    """A 1-D interval ``x`` or a 2-D rectangle ``x`` times ``y`` (user units)."""

    x: tuple[float, float]
    y: tuple[float, float] | None = None

    def __post_init__(self):
        for name in ("x", "y"):
            b = getattr(self, name)
            if b is None:
                continue
            if len(b) != 2 or not all(np.isfinite(b)):
                raise ValueError(f"Domain.{name} must be a finite pair (lower, upper), got {b!r}.")
            if not b[0] < b[1]:
                raise ValueError(f"Domain.{name} bounds are inverted or empty: {b!r}.")
            object.__setattr__(self, name, (float(b[0]), float(b[1])))

    @property
    def ndim(self) -> int:
        return 1 if self.y is None else 2

    def as_dict(self) -> dict[str, tuple[float, float]]:
        return {"x": self.x} if self.y is None else {"x": self.x, "y": self.y}

    @property
    def lengths(self) -> tuple[float, ...]:
        return tuple(b[1] - b[0] for b in self.as_dict().values())


# --------------------------------------------------------------------------------------------
# Parameter links
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Link:
    """How a coefficient field depends on covariates.

    ``Link("log", ("elev",))`` means ``log D(x) = log D + D_elev * elev(x)``;
    ``Link("identity", ("temp",))`` means ``r(x) = r + r_temp * temp(x)``.
    """

    kind: str = "identity"
    covariates: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in ("log", "identity"):
            raise ValueError(f"Link kind must be 'log' or 'identity', got {self.kind!r}.")
        object.__setattr__(self, "covariates", tuple(self.covariates))

    def names(self, base: str) -> tuple[str, ...]:
        return (base,) + tuple(f"{base}_{c}" for c in self.covariates)

    def evaluate(self, base: str, params: Mapping, cov: Mapping):
        """Field of the coefficient on the covariate grid ``cov`` (name -> array)."""
        if self.kind == "log":
            eta = jnp.log(params[base])
        else:
            eta = params[base]
        for c in self.covariates:
            eta = eta + params[f"{base}_{c}"] * cov[c]
        return jnp.exp(eta) if self.kind == "log" else eta


# --------------------------------------------------------------------------------------------
# Initial conditions
# --------------------------------------------------------------------------------------------
class InitialCondition:
    """Base class of initial-condition specifications."""

    def param_names(self, ndim: int) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, eq=False)
class InitialField(InitialCondition):
    """A known initial field ``values`` on coordinates ``x`` (and ``y``) at time ``t0``.

    Compared and hashed by value (arrays included), so that two estimators given the same
    field share compiled programs, and a spec inside a pytree's static data compares cleanly.
    """

    values: np.ndarray
    x: np.ndarray
    y: np.ndarray | None = None
    t0: float = 0.0

    def _key(self):
        arrays = tuple(None if a is None else (np.shape(a), np.asarray(a, float).tobytes())
                       for a in (self.values, self.x, self.y))
        return arrays + (float(self.t0),)

    def __eq__(self, other):
        if not isinstance(other, InitialField):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


@dataclass(frozen=True)
class FirstObservation(InitialCondition):
    """The first observed time slice, interpolated on the grid (gridded observations)."""


@dataclass(frozen=True)
class GaussianIntroductions(InitialCondition):
    """``n`` Gaussian introductions at time ``t0`` with fitted centre, width and mass.

    u0(x) = sum_j mass_j * N(x; centre_j, width_j^2 I). ``mass`` is in units of u times
    length^ndim (the number introduced). With ``fit_t0=True`` the date ``ic_t0`` is fitted too.
    Parameter names: ``ic_x``, ``ic_y`` (2-D), ``ic_width``, ``ic_mass`` (and ``ic_t0``);
    with ``n > 1`` they are ``ic0_x``, ``ic1_x``, ...
    """

    n: int = 1
    t0: float = 0.0
    fit_t0: bool = False

    def prefix(self, j: int) -> str:
        return "ic" if self.n == 1 else f"ic{j}"

    def param_names(self, ndim: int) -> tuple[str, ...]:
        names: list[str] = []
        for j in range(self.n):
            p = self.prefix(j)
            names += [f"{p}_x"] + ([f"{p}_y"] if ndim == 2 else []) + [f"{p}_width", f"{p}_mass"]
        if self.fit_t0:
            names.append("ic_t0")
        return tuple(names)

    def evaluate(self, params: Mapping, xs: Sequence):
        """Initial field on the cell centres ``xs`` = (x,) or (y, x) broadcastable arrays."""
        ndim = len(xs)
        u0 = 0.0
        for j in range(self.n):
            p = self.prefix(j)
            w = params[f"{p}_width"]
            d2 = (xs[-1] - params[f"{p}_x"]) ** 2
            if ndim == 2:
                d2 = d2 + (xs[0] - params[f"{p}_y"]) ** 2
            norm = (2.0 * math.pi) ** (ndim / 2.0) * w**ndim
            u0 = u0 + params[f"{p}_mass"] / norm * jnp.exp(-0.5 * d2 / w**2)
        return u0

    def cell_average(self, params: Mapping, xs: Sequence, spacing: Sequence):
        """Initial field averaged over the cells centred at ``xs`` with widths ``spacing``
        (same axis order as ``xs``): exact cell integrals of each Gaussian (``ndtr``), so the
        mass on the grid is right however narrow the introduction. The point values of
        :meth:`evaluate` put a width below the cell size on a knife edge (the mass seen
        by the grid then depends on where the centre falls between cell centres)."""
        from jax.scipy.special import ndtr

        ndim = len(xs)
        u0 = 0.0
        for j in range(self.n):
            p = self.prefix(j)
            w = params[f"{p}_width"]
            axes = [f"{p}_y", f"{p}_x"] if ndim == 2 else [f"{p}_x"]
            field = params[f"{p}_mass"]
            for c, h, name in zip(xs, spacing, axes, strict=True):
                a = (c - 0.5 * h - params[name]) / w
                b = (c + 0.5 * h - params[name]) / w
                field = field * (ndtr(b) - ndtr(a)) / h
            u0 = u0 + field
        return u0


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
POSITIVE = ("D", "gamma", "K")


@dataclass(frozen=True)
class ReactionDiffusion:
    """Fisher-KPP type model ``du/dt = div(D grad u) + u (r - gamma u)``.

    Parameters
    ----------
    domain : Domain
        Interval or rectangle, user units.
    D, r : Link
        Links of the diffusion coefficient (log link by default) and growth rate (identity).
    competition : {"gamma", "K"}
        Write the density dependence with ``gamma`` or with a carrying capacity ``K``
        (gamma = r / K, the cell-biology form). ``None`` removes it (pure exponential growth).
    boundary : {"neumann", "dirichlet"}
        No-flux, or ``u = boundary_value`` on the boundary.
    initial : InitialCondition
    """

    domain: Domain
    D: Link = field(default_factory=lambda: Link("log"))
    r: Link = field(default_factory=lambda: Link("identity"))
    competition: str | None = "gamma"
    boundary: str = "neumann"
    boundary_value: float = 0.0
    initial: InitialCondition = field(default_factory=FirstObservation)

    def __post_init__(self):
        if not isinstance(self.domain, Domain):
            raise TypeError(f"domain must be a physreg.model.Domain, got {type(self.domain).__name__}.")
        if self.D.kind != "log":
            raise ValueError("The diffusion link must be 'log' (D(x) > 0 everywhere).")
        if self.competition not in ("gamma", "K", None):
            raise ValueError(f"competition must be 'gamma', 'K' or None, got {self.competition!r}.")
        if self.boundary not in ("neumann", "dirichlet"):
            raise ValueError(f"boundary must be 'neumann' or 'dirichlet', got {self.boundary!r}.")
        if not isinstance(self.initial, InitialCondition):
            raise TypeError("initial must be an InitialCondition (InitialField, FirstObservation, "
                            f"GaussianIntroductions), got {type(self.initial).__name__}.")

    @property
    def ndim(self) -> int:
        return self.domain.ndim

    @property
    def covariates(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.D.covariates + self.r.covariates))

    def param_names(self) -> tuple[str, ...]:
        names = self.D.names("D") + self.r.names("r")
        if self.competition is not None:
            names += (self.competition,)
        return names + self.initial.param_names(self.ndim)

    # ---- coefficient fields ------------------------------------------------------------
    def fields(self, params: Mapping, cov: Mapping):
        """(D, r, gamma) on the grid of ``cov`` (dict name -> array; may be empty)."""
        D = self.D.evaluate("D", params, cov)
        r = self.r.evaluate("r", params, cov)
        if self.competition == "gamma":
            gamma = params["gamma"] * jnp.ones_like(r)
        elif self.competition == "K":
            gamma = r / params["K"]
        else:
            gamma = jnp.zeros_like(r)
        return D, r, gamma

    def default_bounds(self, scales: Mapping | None = None) -> dict[str, tuple[float, float]]:
        """Wide default bounds in user units, from characteristic scales.

        ``scales`` may hold ``length`` (domain size), ``time`` (time span), ``u`` (typical density)
        and ``cov`` (dict of covariate standard deviations).
        """
        s = dict(scales or {})
        L = s.get("length", max(self.domain.lengths))
        T = s.get("time", 1.0)
        U = s.get("u", 1.0)
        covsd = s.get("cov", {})
        b: dict[str, tuple[float, float]] = {
            "D": (1e-6 * L**2 / T, 1e2 * L**2 / T),
            "r": (-20.0 / T, 20.0 / T),
            "gamma": (1e-6 / (T * U), 1e3 / (T * U)),
            "K": (1e-3 * U, 1e3 * U),
        }
        for base, link in (("D", self.D), ("r", self.r)):
            for c in link.covariates:
                sd = float(covsd.get(c, 1.0)) or 1.0
                scale = 10.0 if base == "D" else 20.0 / T
                b[f"{base}_{c}"] = (-scale / sd, scale / sd)
        lo = dict(zip(("x", "y"), (self.domain.x, self.domain.y), strict=True))
        for n in self.initial.param_names(self.ndim):
            if n.endswith("_x"):
                b[n] = lo["x"]
            elif n.endswith("_y"):
                b[n] = lo["y"]
            elif n.endswith("_width"):
                b[n] = (1e-3 * L, L)
            elif n.endswith("_mass"):
                b[n] = (1e-8 * U * L**self.ndim, 1e3 * U * L**self.ndim)
            elif n == "ic_t0":
                b[n] = (-T, T)
        return {n: b[n] for n in self.param_names()}

    def transforms(self) -> dict[str, str]:
        out = {}
        for n in self.param_names():
            pos = n in POSITIVE or n.endswith("_width") or n.endswith("_mass")
            out[n] = "log" if pos else "identity"
        return out


# --------------------------------------------------------------------------------------------
# Parameter packing
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterSpace:
    """Free parameters, their transforms and bounds; fixed parameters and their values.

    ``pack`` maps user-unit values of the free parameters to a flat unconstrained vector;
    ``unpack`` maps such a vector back to a dict of every parameter (free and fixed).
    Transforms: ``log`` (positive) or ``identity``. Bounds are enforced by the optimiser
    through a smooth penalty outside the box, and by priors in MCMC.
    """

    free: tuple[str, ...]
    transforms: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    fixed: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        for n, lo, hi, t in zip(self.free, self.lower, self.upper, self.transforms, strict=True):
            if not lo < hi:
                raise ValueError(f"Bounds of parameter {n!r} are inverted or empty: ({lo}, {hi}).")
            if t == "log" and lo <= 0:
                raise ValueError(f"Parameter {n!r} is positive (log transform) but its lower bound is {lo}.")
            if t not in ("log", "identity"):
                raise ValueError(f"Unknown transform {t!r} for parameter {n!r}.")

    @classmethod
    def build(cls, names, transforms: Mapping, bounds: Mapping, fixed: Mapping | None = None):
        fixed = dict(fixed or {})
        unknown = set(fixed) - set(names)
        if unknown:
            raise ValueError(f"Fixed parameters {sorted(unknown)} are not parameters of the model; "
                             f"valid names: {list(names)}.")
        free = tuple(n for n in names if n not in fixed)
        return cls(
            free=free,
            transforms=tuple(transforms[n] for n in free),
            lower=tuple(float(bounds[n][0]) for n in free),
            upper=tuple(float(bounds[n][1]) for n in free),
            fixed=tuple((n, float(v)) for n, v in fixed.items()),
        )

    @property
    def size(self) -> int:
        return len(self.free)

    @property
    def is_log(self) -> np.ndarray:
        return np.array([t == "log" for t in self.transforms], dtype=bool)

    def to_unconstrained(self, values):
        """User-unit values (array, last axis = free params) -> unconstrained."""
        values = jnp.asarray(values)
        return jnp.where(self.is_log, jnp.log(jnp.where(self.is_log, values, 1.0)), values)

    def to_user(self, z):
        z = jnp.asarray(z)
        return jnp.where(self.is_log, jnp.exp(z), z)

    def pack(self, params: Mapping):
        missing = [n for n in self.free if n not in params]
        if missing:
            raise ValueError(f"Missing values for parameters {missing}.")
        return self.to_unconstrained(jnp.array([params[n] for n in self.free], dtype=float))

    def unpack(self, z) -> dict:
        v = self.to_user(z)
        out = {n: v[..., i] for i, n in enumerate(self.free)}
        out.update({n: jnp.asarray(val) for n, val in self.fixed})
        return out

    def bounds_unconstrained(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array(self.lower)
        hi = np.array(self.upper)
        log = self.is_log
        return (np.where(log, np.log(np.where(log, lo, 1.0)), lo),
                np.where(log, np.log(np.where(log, hi, 1.0)), hi))

    def structure(self) -> ParameterSpace:
        """The same space without its bounds (placeholders), for use as a static jit argument.

        Bounds depend on the data's scales; keeping them out of what ``jit`` hashes lets one
        compiled program serve every dataset of the same shape (replicates of a study).
        """
        lo = tuple(1e-300 if t == "log" else -1e300 for t in self.transforms)
        return ParameterSpace(self.free, self.transforms, lo, (1e300,) * len(lo), self.fixed)

    def clip(self, z):
        lo, hi = self.bounds_unconstrained()
        return jnp.clip(z, lo, hi)
