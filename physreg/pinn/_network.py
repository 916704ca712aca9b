"""The network u_nu(t, x[, y]): a jinns ``PINN_MLP`` on rescaled inputs with a positive output.

The network lives entirely in *scaled* coordinates::

    t' = (t - t0) / T           x' = (x - x_lo) / Lx        y' = (y - y_lo) / Ly      (all in [0, 1])
    u  = u_scale * u_hat(t', x'[, y']),      u_hat = softplus(N(t', x'[, y']))

where ``N`` is the raw MLP output on the input features (see :class:`physreg.pinn.Ansatz` for how
``N`` becomes ``u_hat``, with the initial condition built in exactly where it is known in closed form)

so weights, collocation points and residuals are O(1) whatever the user's units. :class:`Scales`
holds the affine maps; every parameter the fit reports is in user units.

Input features (:class:`CosineFeatures`, :class:`BoxFeatures`; compared by value, so that
rebuilding a network never recompiles a training step):

- ``"cosine"``: ``(2 t' - 1, cos(k pi x'), k = 1..modes, ...)``. Each ``cos(k pi x')`` has a zero
  derivative at both ends, so every network built on these features satisfies the no-flux
  (Neumann) boundary condition *exactly*: no boundary penalty is needed.
- ``"box"``: ``(2 t' - 1, 2 x' - 1, sin(k pi x'), cos(k pi x'), ...)`` (Dirichlet: penalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import jinns
import numpy as np

__all__ = ["Scales", "make_network", "FEATURES", "CosineFeatures", "BoxFeatures"]


@dataclass(frozen=True)
class Scales:
    """Affine maps between user units and the network's unit box.

    Attributes
    ----------
    t0, T : float
        Start of the model time and time span (user time units): ``t' = (t - t0) / T``.
    lower, length : tuple of float
        Lower end and length of each spatial axis, in storage order ``(x,)`` or ``(x, y)``
        (x first: the network input is ``(t', x', y')``).
    u : float
        Density scale: ``u = u * u_hat``.
    """

    t0: float
    T: float
    lower: tuple[float, ...]
    length: tuple[float, ...]
    u: float

    def __post_init__(self):
        for name in ("T", "u"):
            v = float(getattr(self, name))
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"Scales.{name} must be a positive finite number, got {v!r}.")
        if any(not (np.isfinite(v) and v > 0) for v in self.length):
            raise ValueError(f"Scales.length must be positive, got {self.length!r}.")

    @property
    def ndim(self) -> int:
        return len(self.length)

    def to_unit(self, t, *xs):
        """User (t, x[, y]) -> network inputs, array ``(..., 1 + ndim)``."""
        cols = [(np.asarray(t, float) - self.t0) / self.T]
        cols += [(np.asarray(x, float) - lo) / L for x, lo, L in
                 zip(xs, self.lower, self.length, strict=True)]
        return np.stack(np.broadcast_arrays(*cols), axis=-1)

    def space_to_unit(self, *xs):
        """User (x[, y]) -> unit-box spatial coordinates, ``(..., ndim)``."""
        cols = [(np.asarray(x, float) - lo) / L for x, lo, L in
                zip(xs, self.lower, self.length, strict=True)]
        return np.stack(np.broadcast_arrays(*cols), axis=-1)

    def space_to_user(self, p):
        """Unit-box spatial coordinates ``(..., ndim)`` -> user coordinates per axis."""
        p = jnp.asarray(p)
        return tuple(self.lower[i] + self.length[i] * p[..., i] for i in range(self.ndim))


@dataclass(frozen=True)
class CosineFeatures:
    """``(2 t' - 1, cos(k pi x'_i) for k = 1..modes, for each axis i)``.

    Each ``cos(k pi x')`` has a zero derivative at both ends of [0, 1], so every network built on
    these features satisfies the no-flux (Neumann) condition exactly. Several modes counter the
    spectral bias of an MLP: an invasion front is narrow in the unit box (width ~ sqrt(D/r) / L).
    A frozen dataclass compares by value: rebuilding the network does not recompile a step.
    """

    modes: int = 8

    def __call__(self, inputs, params=None):
        k = jnp.arange(1, self.modes + 1, dtype=inputs.dtype)
        space = jnp.cos(jnp.pi * k[None, :] * inputs[1:, None]).reshape(-1)
        return jnp.concatenate([2.0 * inputs[:1] - 1.0, space])

    def size(self, ndim: int) -> int:
        return 1 + self.modes * ndim


@dataclass(frozen=True)
class BoxFeatures:
    """``(2 t' - 1, 2 x'_i - 1, sin(k pi x'_i), cos(k pi x'_i) for k = 1..modes)``: no boundary
    condition built in (Dirichlet problems penalise it)."""

    modes: int = 8

    def __call__(self, inputs, params=None):
        k = jnp.arange(1, self.modes + 1, dtype=inputs.dtype)
        arg = jnp.pi * k[None, :] * inputs[1:, None]
        return jnp.concatenate([2.0 * inputs - 1.0, jnp.sin(arg).reshape(-1),
                                jnp.cos(arg).reshape(-1)])

    def size(self, ndim: int) -> int:
        return 1 + ndim * (1 + 2 * self.modes)


FEATURES = {"box": BoxFeatures, "cosine": CosineFeatures}


def tanh(x):
    """``jnp.tanh`` as a module-level function (pickled by reference, unlike ``jnp.tanh``)."""
    return jnp.tanh(x)


def _identity_output(inputs, out, params):
    # jinns' default output transform is a lambda, which cannot be pickled
    return out


def make_network(key, ndim: int, *, width: int = 32, depth: int = 3, features: str = "cosine",
                 modes: int = 8, activation=tanh, dtype=jnp.float64):
    """Build the PINN ``u_hat(t', x'[, y'])`` as a :class:`jinns.nn.PINN_MLP`.

    Arguments
    ---------
    key : PRNG key for the weights.
    ndim : 1 or 2 spatial dimensions.
    width, depth : hidden units per layer and number of hidden layers.
    features : ``"cosine"`` (exact no-flux boundaries) or ``"box"`` (see the module docstring).
    modes : Fourier modes per spatial axis in the input features.
    activation : elementwise activation (smooth: the residual takes second derivatives).
    dtype : dtype of the weights (``jnp.float32`` halves the cost of a step on CPU; inputs are
        cast to it inside the network and its output cast back to float64).

    Returns
    -------
    (network, weights) : the :class:`jinns.nn.PINN_MLP` (call it as ``network(inputs, params)``
        with a :class:`jinns.parameters.Params`; it returns the raw output ``N``, shape (1,)) and
        its initial trainable weights.
    """
    if features not in FEATURES:
        raise ValueError(f"features must be one of {sorted(FEATURES)}, got {features!r}.")
    if depth < 1 or width < 1:
        raise ValueError(f"width and depth must be >= 1, got width={width}, depth={depth}.")
    transform = FEATURES[features](int(modes))
    layers = [(eqx.nn.Linear, transform.size(ndim), width), (activation,)]
    for _ in range(depth - 1):
        layers += [(eqx.nn.Linear, width, width), (activation,)]
    layers += [(eqx.nn.Linear, width, 1)]
    network, weights = jinns.nn.PINN_MLP.create(
        eq_type="PDENonStatio", key=key, eqx_list=tuple(layers),
        input_transform=transform, output_transform=_identity_output)
    weights = jax.tree.map(lambda w: w.astype(dtype) if eqx.is_inexact_array(w) else w, weights)
    return network, weights
