"""Observation models: how an observed value ``y`` depends on the model density ``mu``.

An observation model is the statistical half of a mechanistic-statistical model. The caller
computes ``mu``, the model density at each observation (``u`` at the point, or its mean over the
observation's disk or cell); the observation model gives the log-density of ``y`` given ``mu``,
draws ``y`` given ``mu`` and gives ``E[y | mu]``.

Every model is a frozen dataclass: hashable, picklable, comparable, and usable as a static
argument of :func:`jax.jit`. All numerics are in :mod:`jax.numpy`, so ``logpdf`` can be jitted,
differentiated with respect to ``mu`` and the nuisance parameters, and vmapped.

Nuisance parameters
-------------------
A constructor field left as ``None`` is *fitted*: it appears in :meth:`ObservationModel.nuisance_names`
and its value is passed at call time in the ``nuisance`` dict (user units). A field given a
number is fixed. All nuisance parameters here are positive; their transform is ``"log"``.

Extras
------
``extras`` is a dict of optional per-observation arrays aligned with (broadcastable to) ``y``:

``"sd"``
    known standard deviation of a Gaussian observation (``Gaussian(use_sd=True)``);
``"offset"``
    effort or area multiplier of count and presence intensities (default 1);
``"trials"``
    number of binomial trials (default 1).

Numerical floors
----------------
Logarithms of rates and probabilities are floored at ``log(1e-30)`` (about -69), so an
observed count or presence where the model density is zero gives a large finite negative
log-density, never ``-inf`` or ``NaN`` (also in the gradient). Count and presence intensities
``kappa * offset * mu`` are clipped at 0 from below, so a small negative undershoot of a solver
counts as zero density.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

__all__ = [
    "ObservationModel",
    "Gaussian",
    "LogNormal",
    "Poisson",
    "NegativeBinomial",
    "Binomial",
    "Bernoulli",
    "get_observation_model",
]

_FLOOR = 1e-30
"""Floor of rates, probabilities and scales inside logarithms (see the module docstring)."""

_LOG_FLOOR = math.log(_FLOOR)

#: per-observation auxiliary variables an observation model may read
EXTRAS_KEYS = ("sd", "offset", "trials")


# ----------------------------------------------------------------------------------------------
# Shared numerical helpers
# ----------------------------------------------------------------------------------------------


def _safe_log(x):
    """``log(max(x, _FLOOR))``: finite value and finite (zero) gradient below the floor."""
    return jnp.log(jnp.maximum(x, _FLOOR))


def _intensity(kappa, mu, extras):
    """Count or presence intensity ``kappa * offset * mu``, clipped at 0 from below.

    The clip uses ``x >= 0`` so that the gradient at ``mu = 0`` is the right derivative
    ``kappa * offset`` (the density domain is ``mu >= 0``).
    """
    lam = kappa * extras.get("offset", 1.0) * jnp.asarray(mu)
    return jnp.where(lam >= 0, lam, 0.0)


def _log_presence_probability(lam):
    """``log(1 - exp(-lam))`` computed stably, floored at ``log(_FLOOR)``.

    Uses the double-``where`` trick: the unsafe branch is evaluated at a harmless value where
    it is not selected, so neither the value nor the gradient is ever ``NaN``.
    """
    ok = lam > _FLOOR
    safe_lam = jnp.where(ok, lam, 1.0)
    return jnp.where(ok, jnp.log(-jnp.expm1(-safe_lam)), _LOG_FLOOR)


def _log_binomial_coefficient(n, k):
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _check_positive_field(model, name, value, *, allow_zero=False):
    """Coerce a fixed constructor field to ``float`` and check its sign; ``None`` passes."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{type(model).__name__}({name}=...) must be a number or None (fitted); got {value!r}."
        ) from None
    bad = not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero)
    if bad:
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(
            f"{type(model).__name__}({name}={value!r}): {name} must be a {what} finite number"
            + ("" if allow_zero else " or None to fit it")
            + "."
        )
    return value


def _finite_values(y, label="y"):
    """``y`` as a float array with NaN (missing) entries removed; ±inf raises."""
    y = np.asarray(y, dtype=float)
    if np.any(np.isinf(y)):
        raise ValueError(f"observations {label!r} contain infinite values.")
    return y[~np.isnan(y)]


def _check_integer_counts(y, what):
    """Raise unless ``y`` holds non-negative integers; ``what`` names the values."""
    if np.any(y < 0):
        raise ValueError(
            f"{what} must be non-negative counts; got negative counts (min {y.min():g})."
        )
    if np.any(y != np.round(y)):
        bad = y[y != np.round(y)][0]
        raise ValueError(f"{what} must be integer counts; got non-integer counts (e.g. {bad:g}).")


def _extra(extras, key, shape, default):
    """Extra ``key`` as a float array broadcast to ``shape`` (``default`` when absent)."""
    value = np.asarray(extras.get(key, default), dtype=float)
    try:
        return np.broadcast_to(value, shape)
    except ValueError:
        raise ValueError(
            f"extras[{key!r}] has shape {value.shape}, which does not broadcast to the "
            f"observations' shape {shape}."
        ) from None


def _spread(values):
    """Standard deviation of the finite ``values`` (0 when fewer than two)."""
    values = values[np.isfinite(values)]
    return float(np.std(values)) if values.size > 1 else 0.0


def _check_mu_scale(mu_scale):
    mu_scale = float(mu_scale)
    if not (math.isfinite(mu_scale) and mu_scale > 0):
        raise ValueError(f"mu_scale must be a positive finite number; got {mu_scale!r}.")
    return mu_scale


# ----------------------------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ObservationModel(abc.ABC):
    """Abstract observation model: the law of ``y`` given the model density ``mu``.

    Subclasses are frozen dataclasses whose fields are the model's settings; a nuisance field
    left as ``None`` is fitted. Shared arguments of the methods:

    Parameters
    ----------
    y : array_like
        Observed values, any shape. NaN marks a missing value: :meth:`validate` skips it and
        :meth:`logpdf` returns NaN there, so callers mask missing values.
    mu : array_like
        Model density at each observation, broadcastable to ``y``.
    nuisance : dict[str, float or jax.Array]
        Values, in user units, of every fitted nuisance parameter (:meth:`nuisance_names`).
        Fixed ones are read from the dataclass fields; extra keys are ignored.
    extras : dict[str, array_like]
        Optional per-observation arrays broadcastable to ``y``: ``"sd"``, ``"offset"``,
        ``"trials"`` (see the module docstring). Missing keys take their defaults.
    """

    name: ClassVar[str]
    _NUISANCE_FIELDS: ClassVar[tuple[str, ...]] = ()
    """Fields that are positive nuisance parameters (fitted when ``None``)."""
    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {}
    """Default bounds of each nuisance field, in user units."""

    def __post_init__(self):
        for field in self._NUISANCE_FIELDS:
            value = _check_positive_field(self, field, getattr(self, field))
            object.__setattr__(self, field, value)

    # -- nuisance parameters -------------------------------------------------------------------

    def nuisance_names(self) -> tuple[str, ...]:
        """Names of the fitted nuisance parameters (the fields left as ``None``)."""
        return tuple(f for f in self._NUISANCE_FIELDS if getattr(self, f) is None)

    def nuisance_transforms(self) -> dict[str, str]:
        """Transform of each fitted nuisance parameter to an unconstrained scale.

        Returns
        -------
        dict[str, str]
            ``"log"`` for a positive parameter, ``"identity"`` for an unconstrained one.
            Every nuisance parameter of the models in this module is positive.
        """
        return {n: "log" for n in self.nuisance_names()}

    def nuisance_bounds(self) -> dict[str, tuple[float, float]]:
        """Wide default bounds ``(lower, upper)`` of each fitted nuisance parameter, user units."""
        return {n: self._BOUNDS[n] for n in self.nuisance_names()}

    def _clip_to_bounds(self, values: dict[str, float]) -> dict[str, float]:
        bounds = self.nuisance_bounds()
        return {n: float(np.clip(v, *bounds[n])) for n, v in values.items()}

    def _value(self, field: str, nuisance: dict):
        """A nuisance parameter's value: the fixed field, or ``nuisance[field]`` when fitted."""
        fixed = getattr(self, field)
        if fixed is not None:
            return fixed
        try:
            return nuisance[field]
        except (KeyError, TypeError):
            raise ValueError(
                f"{self!r} fits {field!r}, but `nuisance` has no value for it; pass "
                f"nuisance={{{', '.join(repr(n) + ': ...' for n in self.nuisance_names())}}}."
            ) from None

    @abc.abstractmethod
    def initial_nuisance(self, y: np.ndarray, mu_scale: float, extras: dict) -> dict[str, float]:
        """A reasonable starting value of each fitted nuisance parameter, from the data.

        Parameters
        ----------
        y, extras
            As in the class docstring (NaN entries of ``y`` are ignored).
        mu_scale : float
            Typical magnitude of the model density at the observations (> 0), e.g. the
            carrying capacity or the mean of the initial guess of ``mu``.

        Returns
        -------
        dict[str, float]
            One entry per name in :meth:`nuisance_names`, inside :meth:`nuisance_bounds`.
        """

    # -- data checks ---------------------------------------------------------------------------

    def validate(self, y: np.ndarray, extras: dict, draws: bool = True) -> None:
        """Check observations and extras for this model.

        ``draws=False`` says ``y`` holds expected values (fractional counts, say), not draws
        from the model, from a caller that vouches for them: only the shared checks are made
        (known extras keys, their shapes, positive offsets, finite values), not the model's
        own (integer counts, trials, known sd).

        Raises
        ------
        ValueError
            Naming the problem: unknown extras keys, extras not broadcastable to ``y``,
            infinite values, and the model's own checks (negative or non-integer counts,
            presence not in {0, 1}, successes above trials, non-positive log-normal values,
            negative or zero standard deviations).
        """
        unknown = sorted(set(extras) - set(EXTRAS_KEYS))
        if unknown:
            raise ValueError(f"unknown extras {unknown}; valid keys are {list(EXTRAS_KEYS)}.")
        shape = np.shape(y)
        for key in extras:
            values = _finite_values(_extra(extras, key, shape, 0.0), f"extras[{key!r}]")
            if key == "offset" and np.any(values <= 0):
                raise ValueError("extras['offset'] must be positive (an effort or area).")
        finite = _finite_values(y)
        if draws:
            self._validate(np.asarray(y, dtype=float), finite, extras)

    @abc.abstractmethod
    def _validate(self, y_full: np.ndarray, y: np.ndarray, extras: dict) -> None:
        """Model-specific checks; ``y`` has NaN removed, ``y_full`` keeps the original shape."""

    # -- the law of y given mu -----------------------------------------------------------------

    @abc.abstractmethod
    def logpdf(self, y, mu, nuisance: dict, extras: dict) -> jax.Array:
        """Log-density (or log-mass) of each observation given ``mu``.

        Returns
        -------
        jax.Array
            Shape ``broadcast(y, mu)``, float.
        """

    @abc.abstractmethod
    def sample(self, key, mu, nuisance: dict, extras: dict) -> jax.Array:
        """Draw observations given ``mu``.

        Parameters
        ----------
        key : jax.Array
            PRNG key.

        Returns
        -------
        jax.Array
            Float array of shape ``broadcast(mu, extras)``; counts are integer-valued floats.
        """

    @abc.abstractmethod
    def mean(self, mu, nuisance: dict, extras: dict) -> jax.Array:
        """Expected observation ``E[y | mu]``, shape ``broadcast(mu, extras)``."""


# ----------------------------------------------------------------------------------------------
# Continuous observations
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Gaussian(ObservationModel):
    """Gaussian noise: ``y ~ Normal(mu, s)``.

    The standard deviation ``s`` is, in this order of precedence,

    - ``use_sd=True``: the known per-observation ``extras["sd"]`` (no fitted parameter);
    - ``relative=True``: ``sigma * |mu|`` (proportional noise; ``sigma = 0.05`` is 5% noise);
    - otherwise: the constant ``sigma``.

    In every case ``s = sqrt(s0**2 + sd_floor**2 + 1e-60)``: ``sd_floor`` is an optional
    absolute noise floor added in quadrature (useful with ``relative=True`` where ``mu``
    reaches 0, or with ``use_sd=True`` where some reported sd are 0), and ``1e-30`` a tiny floor
    that keeps the density finite when ``s0`` vanishes.

    Parameters
    ----------
    sigma : float or None
        Noise standard deviation (absolute, or relative to ``mu`` when ``relative``); ``None``
        fits it. Must stay ``None`` with ``use_sd=True``.
    use_sd : bool
        Use the known standard deviations ``extras["sd"]``.
    relative : bool
        Noise proportional to ``mu``.
    sd_floor : float
        Absolute noise floor (>= 0), in the units of ``y``.
    """

    sigma: float | None = None
    use_sd: bool = False
    relative: bool = False
    sd_floor: float = 0.0

    name: ClassVar[str] = "gaussian"
    _NUISANCE_FIELDS: ClassVar[tuple[str, ...]] = ("sigma",)
    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"sigma": (1e-10, 1e10)}
    _RELATIVE_BOUNDS: ClassVar[tuple[float, float]] = (1e-6, 10.0)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "use_sd", bool(self.use_sd))
        object.__setattr__(self, "relative", bool(self.relative))
        floor = _check_positive_field(self, "sd_floor", self.sd_floor, allow_zero=True)
        object.__setattr__(self, "sd_floor", floor)
        if self.use_sd and self.relative:
            raise ValueError(
                "Gaussian(use_sd=True, relative=True): choose one source of the noise sd."
            )
        if self.use_sd and self.sigma is not None:
            raise ValueError(
                "Gaussian(use_sd=True) takes the noise sd from extras['sd']; leave sigma=None "
                "(use sd_floor=... for an absolute floor)."
            )

    def nuisance_names(self) -> tuple[str, ...]:
        return () if self.use_sd else super().nuisance_names()

    def nuisance_bounds(self) -> dict[str, tuple[float, float]]:
        bounds = super().nuisance_bounds()
        if self.relative and "sigma" in bounds:
            bounds["sigma"] = self._RELATIVE_BOUNDS
        return bounds

    def initial_nuisance(self, y, mu_scale, extras):
        """Relative noise starts at 10%; absolute noise at half the spread of ``y``
        (or 10% of ``mu_scale`` when ``y`` is constant)."""
        mu_scale = _check_mu_scale(mu_scale)
        if "sigma" not in self.nuisance_names():
            return {}
        if self.relative:
            return self._clip_to_bounds({"sigma": 0.1})
        spread = _spread(_finite_values(y))
        return self._clip_to_bounds({"sigma": 0.5 * spread if spread > 0 else 0.1 * mu_scale})

    def _validate(self, y_full, y, extras):
        if not self.use_sd:
            return
        if "sd" not in extras:
            raise ValueError(
                "Gaussian(use_sd=True) needs the known standard deviations extras['sd']."
            )
        sd = _extra(extras, "sd", y_full.shape, 0.0)[~np.isnan(y_full)]
        if np.any(np.isnan(sd)):
            raise ValueError("extras['sd'] is NaN where y is observed.")
        if np.any(sd < 0):
            raise ValueError(
                f"extras['sd'] must be non-negative; got negative sd (min {sd.min():g})."
            )
        if self.sd_floor == 0 and np.any(sd == 0):
            raise ValueError(
                "extras['sd'] has zero standard deviations, which make the Gaussian density "
                "degenerate; set Gaussian(use_sd=True, sd_floor=...) to a positive floor."
            )

    def _scale(self, mu, nuisance, extras):
        if self.use_sd:
            if "sd" not in extras:
                raise ValueError("Gaussian(use_sd=True) needs extras['sd'].")
            s0 = jnp.asarray(extras["sd"])
        elif self.relative:
            s0 = self._value("sigma", nuisance) * jnp.asarray(mu)
        else:
            s0 = jnp.asarray(self._value("sigma", nuisance))
        return jnp.sqrt(s0**2 + self.sd_floor**2 + _FLOOR**2)

    def logpdf(self, y, mu, nuisance, extras):
        s = self._scale(mu, nuisance, extras)
        z = (jnp.asarray(y) - mu) / s
        return -0.5 * z**2 - jnp.log(s) - 0.5 * math.log(2 * math.pi)

    def sample(self, key, mu, nuisance, extras):
        mu = jnp.asarray(mu, dtype=float)
        s = self._scale(mu, nuisance, extras)
        shape = jnp.broadcast_shapes(mu.shape, s.shape)
        return mu + s * jax.random.normal(key, shape, dtype=mu.dtype)

    def mean(self, mu, nuisance, extras):
        return jnp.asarray(mu, dtype=float)


@dataclasses.dataclass(frozen=True)
class LogNormal(ObservationModel):
    """Log-normal noise: ``log y ~ Normal(log mu, sigma)``.

    ``mu`` is the *median* of ``y``; the mean is ``mu * exp(sigma**2 / 2)``. This is
    ``scipy.stats.lognorm(s=sigma, scale=mu)``. ``mu`` is floored at ``1e-30`` inside the
    logarithm. Observations must be positive.

    Parameters
    ----------
    sigma : float or None
        Standard deviation of ``log y``; ``None`` fits it.
    """

    sigma: float | None = None

    name: ClassVar[str] = "lognormal"
    _NUISANCE_FIELDS: ClassVar[tuple[str, ...]] = ("sigma",)
    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"sigma": (1e-6, 20.0)}

    def initial_nuisance(self, y, mu_scale, extras):
        """Half the spread of ``log y`` (0.1 when ``y`` is constant)."""
        _check_mu_scale(mu_scale)
        if not self.nuisance_names():
            return {}
        y = _finite_values(y)
        spread = _spread(np.log(y[y > 0]))
        return self._clip_to_bounds({"sigma": 0.5 * spread if spread > 0 else 0.1})

    def _validate(self, y_full, y, extras):
        if np.any(y <= 0):
            raise ValueError(
                f"LogNormal observations must be positive; got non-positive values "
                f"(min {y.min():g}). Use a count model, or add a documented offset to y."
            )

    def logpdf(self, y, mu, nuisance, extras):
        sigma = self._value("sigma", nuisance)
        log_y = jnp.log(jnp.asarray(y))
        z = (log_y - _safe_log(mu)) / sigma
        return -0.5 * z**2 - jnp.log(sigma) - log_y - 0.5 * math.log(2 * math.pi)

    def sample(self, key, mu, nuisance, extras):
        mu = jnp.asarray(mu, dtype=float)
        sigma = self._value("sigma", nuisance)
        z = jax.random.normal(key, mu.shape, dtype=mu.dtype)
        return jnp.maximum(mu, _FLOOR) * jnp.exp(sigma * z)

    def mean(self, mu, nuisance, extras):
        sigma = self._value("sigma", nuisance)
        return jnp.asarray(mu, dtype=float) * jnp.exp(0.5 * sigma**2)


# ----------------------------------------------------------------------------------------------
# Counts
# ----------------------------------------------------------------------------------------------


def _initial_kappa(y, mu_scale, extras):
    """Moment estimate of ``kappa`` from mean counts: ``sum(y) / (mu_scale * sum(offset))``.

    With no counts at all, the value that makes the expected total 0.5.
    """
    y_full = np.asarray(y, dtype=float)
    seen = ~np.isnan(y_full)
    offset = _extra(extras, "offset", y_full.shape, 1.0)[seen]
    return max(np.sum(y_full[seen]), 0.5) / (mu_scale * np.sum(offset))


@dataclasses.dataclass(frozen=True)
class Poisson(ObservationModel):
    """Poisson counts: ``y ~ Poisson(kappa * offset * mu)``.

    Parameters
    ----------
    kappa : float or None
        Detection or sampling scale linking density to expected counts; ``None`` fits it.
    """

    kappa: float | None = 1.0

    name: ClassVar[str] = "poisson"
    _NUISANCE_FIELDS: ClassVar[tuple[str, ...]] = ("kappa",)
    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"kappa": (1e-10, 1e10)}

    def initial_nuisance(self, y, mu_scale, extras):
        """``kappa`` from the mean count: ``sum(y) / (mu_scale * sum(offset))``."""
        mu_scale = _check_mu_scale(mu_scale)
        if not self.nuisance_names():
            return {}
        return self._clip_to_bounds({"kappa": _initial_kappa(y, mu_scale, extras)})

    def _validate(self, y_full, y, extras):
        _check_integer_counts(y, f"{type(self).__name__} observations")

    def logpdf(self, y, mu, nuisance, extras):
        y = jnp.asarray(y)
        lam = _intensity(self._value("kappa", nuisance), mu, extras)
        return y * _safe_log(lam) - lam - gammaln(y + 1.0)

    def sample(self, key, mu, nuisance, extras):
        lam = self.mean(mu, nuisance, extras)
        return jax.random.poisson(key, lam, lam.shape).astype(lam.dtype)

    def mean(self, mu, nuisance, extras):
        return _intensity(self._value("kappa", nuisance), jnp.asarray(mu, dtype=float), extras)


@dataclasses.dataclass(frozen=True)
class NegativeBinomial(ObservationModel):
    """Negative-binomial (overdispersed) counts.

    Mean ``m = kappa * offset * mu``, variance ``m + m**2 / phi``. This is
    ``scipy.stats.nbinom(n=phi, p=phi / (phi + m))``, a Poisson with a Gamma-distributed rate;
    ``phi -> inf`` recovers the Poisson.

    Parameters
    ----------
    kappa : float or None
        Detection or sampling scale; ``None`` fits it.
    phi : float or None
        Size (inverse overdispersion), > 0; ``None`` fits it.
    """

    kappa: float | None = 1.0
    phi: float | None = None

    name: ClassVar[str] = "negbin"
    _NUISANCE_FIELDS: ClassVar[tuple[str, ...]] = ("kappa", "phi")
    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "kappa": (1e-10, 1e10),
        "phi": (1e-4, 1e6),
    }

    def initial_nuisance(self, y, mu_scale, extras):
        """``kappa`` from the mean count as :class:`Poisson`; ``phi`` by the method of moments
        on the raw counts (``mean**2 / (var - mean)``, 10 when not overdispersed)."""
        mu_scale = _check_mu_scale(mu_scale)
        values = {}
        if self.kappa is None:
            values["kappa"] = _initial_kappa(y, mu_scale, extras)
        if self.phi is None:
            counts = _finite_values(y)
            m = np.mean(counts) if counts.size else 0.0
            v = np.var(counts, ddof=1) if counts.size > 1 else 0.0
            values["phi"] = m**2 / (v - m) if v > m > 0 else 10.0
        return self._clip_to_bounds(values)

    def _validate(self, y_full, y, extras):
        _check_integer_counts(y, f"{type(self).__name__} observations")

    def logpdf(self, y, mu, nuisance, extras):
        y = jnp.asarray(y)
        m = _intensity(self._value("kappa", nuisance), mu, extras)
        phi = self._value("phi", nuisance)
        return (
            gammaln(y + phi)
            - gammaln(phi)
            - gammaln(y + 1.0)
            - phi * jnp.log1p(m / phi)
            + y * (_safe_log(m) - jnp.log(phi + m))
        )

    def sample(self, key, mu, nuisance, extras):
        m = self.mean(mu, nuisance, extras)
        phi = self._value("phi", nuisance)
        key_rate, key_count = jax.random.split(key)
        rate = jax.random.gamma(key_rate, phi, m.shape, dtype=m.dtype) * (m / phi)
        return jax.random.poisson(key_count, rate, m.shape).astype(m.dtype)

    def mean(self, mu, nuisance, extras):
        return _intensity(self._value("kappa", nuisance), jnp.asarray(mu, dtype=float), extras)


# ----------------------------------------------------------------------------------------------
# Presence / detection
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Binomial(ObservationModel):
    """Binomial detections: ``y`` successes out of ``n = extras["trials"]`` (default 1).

    Each trial detects the species with probability ``p = 1 - exp(-kappa * offset * mu)``,
    the probability that a Poisson number of individuals with mean ``kappa * offset * mu`` is
    at least one. ``log(1 - p) = -kappa * offset * mu`` exactly and ``log p`` is floored at
    ``log(1e-30)``, so a detection where ``mu = 0`` costs a large finite log-density and no
    ``NaN`` appears, in the value or the gradient.

    Parameters
    ----------
    kappa : float or None
        Detectability scale (inverse density units); ``None`` fits it.
    """

    kappa: float | None = None

    name: ClassVar[str] = "binomial"
    _NUISANCE_FIELDS: ClassVar[tuple[str, ...]] = ("kappa",)
    _BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"kappa": (1e-10, 1e10)}

    def _trials(self, extras):
        return extras.get("trials", 1.0)

    def initial_nuisance(self, y, mu_scale, extras):
        """``kappa = -log(1 - p_hat) / (mu_scale * mean(offset))`` with ``p_hat`` the overall
        detection rate, kept within ``[0.5 / N, 1 - 0.5 / N]`` for ``N`` trials in all."""
        mu_scale = _check_mu_scale(mu_scale)
        if not self.nuisance_names():
            return {}
        y_full = np.asarray(y, dtype=float)
        seen = ~np.isnan(y_full)
        n = _extra({"trials": self._trials(extras)}, "trials", y_full.shape, 1.0)[seen]
        offset = _extra(extras, "offset", y_full.shape, 1.0)[seen]
        total = max(np.sum(n), 1.0)
        p_hat = np.clip(np.sum(y_full[seen]) / total, 0.5 / total, 1 - 0.5 / total)
        return self._clip_to_bounds({"kappa": -np.log1p(-p_hat) / (mu_scale * np.mean(offset))})

    def _validate(self, y_full, y, extras):
        _check_integer_counts(y, "Binomial successes")
        trials = _extra(extras, "trials", y_full.shape, 1.0)
        _check_integer_counts(_finite_values(trials, "extras['trials']"), "extras['trials']")
        seen = ~np.isnan(y_full)
        if np.any(y_full[seen] > trials[seen]):
            raise ValueError("Binomial successes exceed trials (y > extras['trials']).")

    def logpdf(self, y, mu, nuisance, extras):
        y = jnp.asarray(y)
        n = self._trials(extras)
        lam = _intensity(self._value("kappa", nuisance), mu, extras)
        return _log_binomial_coefficient(n, y) + y * _log_presence_probability(lam) - (n - y) * lam

    def _probability(self, mu, nuisance, extras):
        lam = _intensity(self._value("kappa", nuisance), jnp.asarray(mu, dtype=float), extras)
        return -jnp.expm1(-lam)

    def sample(self, key, mu, nuisance, extras):
        p = self._probability(mu, nuisance, extras)
        n = jnp.asarray(self._trials(extras), dtype=p.dtype)
        shape = jnp.broadcast_shapes(p.shape, n.shape)
        return jax.random.binomial(key, n, p, shape).astype(p.dtype)

    def mean(self, mu, nuisance, extras):
        return self._trials(extras) * self._probability(mu, nuisance, extras)


@dataclasses.dataclass(frozen=True)
class Bernoulli(Binomial):
    """Presence/absence: :class:`Binomial` with one trial per observation, ``y`` in {0, 1}.

    Parameters
    ----------
    kappa : float or None
        Detectability scale (inverse density units); ``None`` fits it.
    """

    name: ClassVar[str] = "bernoulli"

    def _trials(self, extras):
        return 1.0

    def sample(self, key, mu, nuisance, extras):
        p = self._probability(mu, nuisance, extras)
        return jax.random.bernoulli(key, p).astype(p.dtype)

    def _validate(self, y_full, y, extras):
        if np.any((y != 0) & (y != 1)):
            bad = np.unique(y[(y != 0) & (y != 1)])[:5]
            raise ValueError(f"Bernoulli presence must be in {{0, 1}}; got {bad.tolist()}.")
        if "trials" in extras and np.any(np.asarray(extras["trials"]) != 1):
            raise ValueError(
                "Bernoulli has one trial per observation; for extras['trials'] use Binomial()."
            )


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

_REGISTRY: dict[str, type[ObservationModel]] = {
    "gaussian": Gaussian,
    "lognormal": LogNormal,
    "poisson": Poisson,
    "negbin": NegativeBinomial,
    "negative_binomial": NegativeBinomial,
    "binomial": Binomial,
    "bernoulli": Bernoulli,
}


def get_observation_model(name_or_instance: str | ObservationModel) -> ObservationModel:
    """Resolve an observation model from its name, or pass an instance through.

    Parameters
    ----------
    name_or_instance : str or ObservationModel
        One of ``"gaussian"``, ``"lognormal"``, ``"poisson"``, ``"negbin"`` (or
        ``"negative_binomial"``), ``"binomial"``, ``"bernoulli"`` (case-insensitive), which
        gives the model with its default settings, or a model instance.

    Returns
    -------
    ObservationModel

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names).
    TypeError
        For anything that is neither a string nor an :class:`ObservationModel`.
    """
    if isinstance(name_or_instance, ObservationModel):
        return name_or_instance
    if not isinstance(name_or_instance, str):
        raise TypeError(
            "observation model must be a name or an ObservationModel instance; got "
            f"{type(name_or_instance).__name__}."
        )
    key = name_or_instance.strip().lower().replace("-", "_")
    try:
        return _REGISTRY[key]()
    except KeyError:
        raise ValueError(
            f"unknown observation model {name_or_instance!r}; valid names are {sorted(_REGISTRY)}."
        ) from None
