"""The physics of the penalty: residual, boundary and initial-condition terms, in scaled units.

With ``t' = (t - t0) / T``, ``x'_i = (x_i - lo_i) / L_i`` and ``u = U u_hat`` the model

    du/dt = div(D(x) grad u) + u (r(x) - gamma(x) u)

becomes, divided by ``U / T`` (so every term is O(1) and ``lambda_pde ~ 1`` is a sensible weight):

    R = du_hat/dt' - sum_i (T / L_i^2) d/dx'_i (D(x) du_hat/dx'_i) - T u_hat (r(x) - gamma(x) U u_hat)

:class:`ReactionDiffusionPDE` is a jinns dynamic loss (``jinns.loss.PDENonStatio``): its
``equation(t_x, u, params)`` evaluates ``R`` at one point of the unit box for a jinns network ``u``
and :class:`jinns.parameters.Params` whose ``eq_params`` is the dict of model parameters in user
units. ``D(x)`` and ``r(x)`` follow :meth:`physreg.model.ReactionDiffusion.fields`; covariates are
interpolated (linearly, in JAX, so their gradient enters ``div(D grad u)``) from the grids they were
given on. Derivatives of the network are taken in forward mode (nested ``jax.jvp``): for a scalar
network of 2-3 inputs this is several times cheaper than the reverse-mode Hessian of
``jinns.loss.laplacian_rev`` (the tests check both agree).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jinns

from ..model import ReactionDiffusion
from ._network import tanh as _net_tanh

__all__ = ["ReactionDiffusionPDE", "network_derivatives", "interp_linear", "scalar_network", "Ansatz",
           "taylor_streams", "heat_introductions", "saturated_growth"]


def interp_linear(axes, values, p):
    """Linear (1-D) or bilinear (2-D) interpolation at one unit-box point ``p`` (ndim,).

    ``axes`` is a tuple of increasing unit-box coordinates in input order ``(x,)`` / ``(x, y)``;
    ``values`` has shape ``(n_cov, *[len(a) for a in reversed(axes)])`` (storage order
    ``([y,] x)``); beyond the outermost coordinates the edge value is used. Returns ``(n_cov,)``.
    """
    if len(axes) == 1:
        return jax.vmap(lambda v: jnp.interp(p[0], axes[0], v))(values)
    ax, ay = axes

    def weights(a, q):
        q = jnp.clip(q, a[0], a[-1])
        i = jnp.clip(jnp.searchsorted(a, q, side="right") - 1, 0, a.shape[0] - 2)
        f = (q - a[i]) / (a[i + 1] - a[i])
        return i, f

    ix, fx = weights(ax, p[0])
    iy, fy = weights(ay, p[1])
    v00 = values[:, iy, ix]
    v01 = values[:, iy, ix + 1]
    v10 = values[:, iy + 1, ix]
    v11 = values[:, iy + 1, ix + 1]
    return (1 - fy) * ((1 - fx) * v00 + fx * v01) + fy * ((1 - fx) * v10 + fx * v11)


def covariates_at(model, axes, values, p):
    """Dict name -> value of ``model.covariates`` at the unit-box point ``p = (t', x'...)``,
    interpolated (:func:`interp_linear`) from grids ``axes`` / ``values``; empty without
    covariates."""
    if not model.covariates:
        return {}
    z = interp_linear(axes, values, p[1:])
    return {c: z[k] for k, c in enumerate(model.covariates)}


def network_derivatives(f, p, ndim: int):
    """Value and derivatives of a scalar function ``f`` at one point ``p = (t', x'...)``.

    Returns ``(u, du/dt', grad_x' u (ndim,), d2u/dx'_i^2 (ndim,))``, forward mode (nested
    ``jax.jvp``).
    """
    eye = jnp.eye(p.shape[0], dtype=p.dtype)
    u, u_t = jax.jvp(f, (p,), (eye[0],))
    grads, seconds = [], []
    for i in range(1, ndim + 1):
        first = lambda q, e=eye[i]: jax.jvp(f, (q,), (e,))[1]
        g, h = jax.jvp(first, (p,), (eye[i],))
        grads.append(g)
        seconds.append(h)
    return u, u_t, jnp.stack(grads), jnp.stack(seconds)


def _elementwise_derivatives(act, z):
    """act(z), act'(z), act''(z) for an elementwise activation."""
    if act is jnp.tanh or act is jax.nn.tanh or act is _net_tanh:
        a = jnp.tanh(z)
        s1 = 1.0 - a * a
        return a, s1, -2.0 * a * s1
    ones = jnp.ones_like(z)
    d1 = lambda y: jax.jvp(act, (y,), (ones,))[1]
    a, s1 = jax.jvp(act, (z,), (ones,))
    return a, s1, jax.jvp(d1, (z,), (ones,))[1]


def taylor_streams(u, params, points, ndim: int):
    """Batched ``(u_hat, du/dt', grad_x' u (n, d), d2u/dx'_i^2 (n, d))`` at ``points (n, 1+d)``.

    Propagates the 2 + 2d Taylor coefficients (value, d/dt', d/dx'_i, d2/dx'_i^2) through the
    layers of the jinns MLP with one stacked matmul per layer ("Taylor mode"), instead of nested
    ``jvp`` per point; the input features and the ansatz head are differentiated with ``jvp``
    (elementwise, cheap). Returns None when ``u`` is not an :class:`Ansatz` over a jinns MLP
    of ``Linear`` layers and elementwise activations.
    """
    net = getattr(u, "network", None)
    static = getattr(net, "static", None)
    if not isinstance(u, Ansatz) or static is None:
        return None
    mlp = eqx.combine(params.nn_params, static)
    layers = getattr(mlp, "layers", None)
    if layers is None:
        return None
    leaves = jax.tree.leaves(params.nn_params)
    wdtype = leaves[0].dtype if leaves else points.dtype
    feats = net.input_transform
    d1 = 1 + ndim
    eye = jnp.eye(d1, dtype=wdtype)

    def feature_streams(p):
        f, f_t = jax.jvp(lambda q: feats(q, params), (p,), (eye[0],))
        firsts, seconds = [], []
        for i in range(1, d1):
            g = lambda q, e=eye[i]: jax.jvp(lambda r: feats(r, params), (q,), (e,))[1]
            a, b = jax.jvp(g, (p,), (eye[i],))
            firsts.append(a)
            seconds.append(b)
        return jnp.stack([f, f_t, *firsts, *seconds])

    H = jax.vmap(feature_streams, out_axes=1)(points.astype(wdtype))   # (S, n, F)
    H = [H[k] for k in range(H.shape[0])]
    for layer in layers:
        if isinstance(layer, eqx.nn.Linear):
            H = [h @ layer.weight.T for h in H]
            if layer.bias is not None:
                H[0] = H[0] + layer.bias
        elif callable(layer):
            a, s1, s2 = _elementwise_derivatives(layer, H[0])
            first = [s1 * h for h in H[1: 2 + ndim]]
            second = [s1 * h2 + s2 * h1 * h1 for h1, h2 in zip(H[2: 2 + ndim], H[2 + ndim:],
                                                               strict=True)]
            H = [a, *first, *second]
        else:
            return None
    H = jnp.stack(H)
    N = H[..., 0].astype(points.dtype)          # (S, n)

    def head(p, n):
        # u_hat along each direction through the 2nd-order Taylor polynomial of N at p
        def along(i, s):
            q = p.at[i].add(s)
            if i == 0:
                return u.head(q, n[0] + s * n[1], params)
            return u.head(q, n[0] + s * n[1 + i] + 0.5 * s * s * n[1 + ndim + i], params)

        zero = jnp.zeros((), p.dtype)
        val, u_t = jax.jvp(lambda s: along(0, s), (zero,), (jnp.ones((), p.dtype),))
        grads, seconds = [], []
        for i in range(1, d1):
            fi = lambda s, i=i: jax.jvp(lambda r: along(i, r), (s,), (jnp.ones((), p.dtype),))[1]
            g, h = jax.jvp(fi, (zero,), (jnp.ones((), p.dtype),))
            grads.append(g)
            seconds.append(h)
        return val, u_t, jnp.stack(grads), jnp.stack(seconds)

    return jax.vmap(head, in_axes=(0, 1))(points, N)


class ReactionDiffusionPDE(jinns.loss.PDENonStatio):
    """Scaled residual of :class:`~physreg.model.ReactionDiffusion` as a jinns dynamic loss.

    Arguments
    ---------
    model : the model (static: links, competition form).
    T : time scale; lengths : per-axis spatial scales ``(Lx[, Ly])``; lower : per-axis lower ends;
    u_scale : density scale (see :class:`physreg.pinn.Scales`).
    cov_axes : tuple of per-axis covariate grid coordinates in the unit box (input order ``x, y``).
    cov_values : ``(n_cov, [ny,] nx)`` covariate values, in the order of ``model.covariates``.
    relative_floor : if given, the residual is divided by ``|u_hat| + relative_floor``: a relative
        residual, which weighs the leading edge of an invasion front (see ``build_problem``).
    """

    model: ReactionDiffusion = eqx.field(static=True, kw_only=True)
    T: float = eqx.field(static=True, kw_only=True)
    lengths: tuple = eqx.field(static=True, kw_only=True)
    u_scale: float = eqx.field(static=True, kw_only=True)
    cov_axes: tuple = eqx.field(kw_only=True, default=())
    cov_values: jax.Array | None = eqx.field(kw_only=True, default=None)
    relative_floor: float | None = eqx.field(static=True, kw_only=True, default=None)

    @property
    def ndim(self) -> int:
        return len(self.lengths)

    def covariates_at(self, p):
        """Dict name -> covariate value at the unit-box point ``p`` = (t', x'...)."""
        return covariates_at(self.model, self.cov_axes, self.cov_values, p)

    def coefficients(self, p, params: dict):
        """(log D, r, gamma) at the point ``p`` (user units)."""
        cov = self.covariates_at(p)
        D, r, gamma = self.model.fields(params, cov)
        return jnp.log(D), r, gamma

    def equation(self, t_x, u, params):
        """Scaled residual ``R`` (shape (1,)) at ``t_x`` (unit box), see the module docstring.

        The pointwise jinns interface (nested forward-mode derivatives of any network ``u``);
        :meth:`residuals` is the batched fast path for MLPs.
        """
        f = scalar_network(u, params)
        u_hat, u_t, grad, second = network_derivatives(f, t_x, self.ndim)
        return self.residual_from_derivatives(t_x, u_hat, u_t, grad, second, params.eq_params)[None]

    def residual_from_derivatives(self, p, u_hat, u_t, grad, second, eq):
        """``R`` at one point from ``u_hat``, ``du_hat/dt'``, ``grad_x' u_hat`` (d,) and the
        second derivatives ``d2 u_hat / dx'_i^2`` (d,)."""
        inv_L2 = jnp.asarray([1.0 / L**2 for L in self.lengths])
        if self.model.D.covariates:
            eye = jnp.eye(p.shape[0], dtype=p.dtype)
            log_D_fn = lambda q: self.coefficients(q, eq)[0]
            dlogD = jnp.stack([jax.jvp(log_D_fn, (p,), (eye[1 + i],))[1]
                               for i in range(self.ndim)])
            second = second + dlogD * grad
        log_D, r, gamma = self.coefficients(p, eq)
        diffusion = self.T * jnp.exp(log_D) * jnp.sum(inv_L2 * second)
        reaction = self.T * u_hat * (r - gamma * self.u_scale * u_hat)
        res = u_t - diffusion - reaction
        if self.relative_floor is not None:
            res = res / (jnp.abs(u_hat) + self.relative_floor)
        return res

    def residuals(self, points, u, params):
        """``R`` at a batch of points ``(n, 1 + d)``, shape (n,).

        Taylor-mode propagation through the MLP (:func:`taylor_streams`) when ``u`` is an
        :class:`Ansatz` over a jinns MLP; otherwise ``vmap`` of :meth:`equation`.
        """
        streams = taylor_streams(u, params, points, self.ndim)
        if streams is None:
            return jax.vmap(self.equation, (0, None, None))(points, u, params)[:, 0]
        u_hat, u_t, grad, second = streams
        return jax.vmap(self.residual_from_derivatives, (0, 0, 0, 0, 0, None))(
            points, u_hat, u_t, grad, second, params.eq_params)


def scalar_network(u, params):
    """``q -> u(q, params)[0]``: a jinns-style network as a scalar function of one point."""
    return lambda q: u(q, params)[0]


def _softplus_inverse(y):
    """log(exp(y) - 1) for y > 0, stable for small and large y."""
    return y + jnp.log(-jnp.expm1(-y))


class Ansatz(eqx.Module):
    """``u_hat(t', x')`` from the raw network output ``N`` (jinns call convention
    ``u(inputs, params) -> (1,)`` with a :class:`jinns.parameters.Params`).

    - ``kind="soft"``: ``u_hat = softplus(N)``; the initial condition, if any, is a penalty.
    - ``kind="hard"``: ``u_hat = softplus(s0(x') + t' N)`` with ``s0 = softplus^-1(u0_hat + eps)``
      for Gaussian introductions ``u0`` (parameters read from ``params.eq_params``, user units):
      ``u_hat(0, x') = u0_hat + eps`` exactly, for any weights. ``eps`` (1e-8 of the density
      scale) keeps ``s0`` finite; under logistic growth it stays below ``eps * exp(r T)``.
    - ``kind="heat"``: ``u_hat = softplus(softplus^-1(S / U + eps) + t' N)`` where ``S`` is the
      linearised spread of the introductions with the current ``D``, ``r``, ``gamma`` (see
      :func:`heat_introductions`): the heat kernel ``H0`` (variance ``w^2 + 2 D (t - t0)``,
      mirror images about the no-flux ends), grown and saturated as the logistic ODE does,
      ``S = H0 e^{r tau} / (1 + gamma H0 (e^{r tau} - 1) / r)``. ``S(t0) = u0`` (up to the
      images' tails), ``S -> H0 e^{r tau}`` (the exact linear solution) while ``u << r / gamma``;
      ``D`` shapes the spread in the ansatz itself and the network only corrects it. With
      covariates, ``heat_rates`` says where ``D``, ``r`` and ``gamma`` are taken: ``"mean"``
      (the default) at the covariates' mean over their grid (``cov_mean``, computed once from
      ``cov_values`` by :func:`build_problem`), one set of rates for the whole domain;
      ``"local"`` at the point itself (``cov_axes``, ``cov_values`` as in
      :class:`ReactionDiffusionPDE`). ``"local"`` is a poor ansatz: the growth
      ``e^{r(x) tau}`` at a point depends on the rates along the way the front came, not on
      the rate there, so in a fast-growth patch ``S`` saturates long before the front arrives
      and in a slow one long after; the network must undo errors of several units of
      ``log u`` along the front. On the bundled 2-D data with every parameter held at the
      truth (``studies/pinn_fit_2d.py --initial gaussian --forward-check``, rows ``fwd-truth-*``
      of ``studies/results/pinn_fit_2d.jsonl``) the PINN's u was 7.5-19% (L2) from the
      finite-volume solution at the five observed times with ``"local"`` and 0.7-1.9% with
      ``"mean"``.

    The network computes in the dtype of its weights (float32 weights: float32 arithmetic);
    points are cast to it and ``N`` cast back to the points' dtype.
    """

    network: eqx.Module
    kind: str = eqx.field(static=True)
    scales: object = eqx.field(static=True)
    initial: object = eqx.field(static=True, default=None)
    eps: float = eqx.field(static=True, default=1e-8)
    model: object = eqx.field(static=True, default=None)
    cov_axes: tuple = ()
    cov_values: jax.Array | None = None
    cov_mean: jax.Array | None = None
    heat_rates: str = eqx.field(static=True, default="mean")

    def raw(self, inputs, params):
        leaves = jax.tree.leaves(params.nn_params)
        wdtype = leaves[0].dtype if leaves else inputs.dtype
        return self.network(inputs.astype(wdtype), params)[0].astype(inputs.dtype)

    def head(self, inputs, n, params):
        """u_hat at the point ``inputs`` from the raw network value ``n`` there (scalar)."""
        if self.kind == "soft":
            return jax.nn.softplus(n)
        if self.kind == "heat":
            u0 = self.spread(inputs, params) / self.scales.u
        else:
            xs = self.scales.space_to_user(inputs[1:])
            u0 = self.initial.evaluate(params.eq_params, tuple(reversed(xs))) / self.scales.u
        return jax.nn.softplus(_softplus_inverse(u0 + self.eps) + inputs[0] * n)

    def spread(self, inputs, params):
        """``S`` (user units) of ``kind="heat"`` at the unit-box point ``inputs``."""
        eq = params.eq_params
        if self.heat_rates == "local" or self.cov_mean is None:
            cov = covariates_at(self.model, self.cov_axes, self.cov_values, inputs)
        else:
            cov = {c: self.cov_mean[k] for k, c in enumerate(self.model.covariates)}
        D, r, gamma = self.model.fields(eq, cov)
        tau = inputs[0] * self.scales.T
        xs = tuple(self.scales.space_to_user(inputs[1:]))
        H0 = heat_introductions(self.initial, eq, xs, tau, D, self.scales.lower,
                                self.scales.length)
        return saturated_growth(H0, tau, r, gamma)

    def __call__(self, inputs, params):
        return self.head(inputs, self.raw(inputs, params), params)[None]


def heat_introductions(initial, params, xs, tau, D, lower, length, n_images: int = 2):
    """Heat kernel of Gaussian introductions after a time ``tau`` with diffusion ``D``.

    ``sum_j m_j prod_a K_a(x_a)`` with ``K_a`` the 1-D Gaussian of centre ``c_ja`` and variance
    ``w_j^2 + 2 D tau``, reflected about both ends of axis ``a`` (``lower[a]``, ``lower[a] +
    length[a]``): the images ``c + 2 k L`` and ``2 lo - c + 2 k L``, ``|k| <= n_images``, so
    that the x-derivative vanishes at both ends up to the next image's tail (at a distance
    ``2 (n_images + 1) L - |c - lo|`` or more: negligible while ``2 D tau`` stays below about
    ``L^2``; a flatter kernel needs more images). ``xs`` in input
    order ``(x[, y])``, user units; ``params`` hold the introductions' parameters
    (:class:`physreg.model.GaussianIntroductions` names).
    """
    ndim = len(xs)
    axes = ("x", "y")[:ndim]
    out = 0.0
    for j in range(initial.n):
        p = initial.prefix(j)
        var = params[f"{p}_width"] ** 2 + 2.0 * D * tau
        field = params[f"{p}_mass"]
        for a, name in enumerate(axes):
            c, lo, L = params[f"{p}_{name}"], lower[a], length[a]
            shifts = 2.0 * L * jnp.arange(-n_images, n_images + 1, dtype=jnp.result_type(c))
            centres = jnp.concatenate([c + shifts, 2.0 * lo - c + shifts])
            d = jnp.asarray(xs[a])[..., None] - centres      # images on a trailing axis
            k = jnp.sum(jnp.exp(-0.5 * d**2 / jnp.asarray(var)[..., None]), -1)
            field = field * k / jnp.sqrt(2.0 * jnp.pi * var)
        out = out + field
    return out


def saturated_growth(H0, tau, r, gamma):
    """``H0 e^{r tau} / (1 + gamma H0 (e^{r tau} - 1) / r)``: the logistic ODE's solution from
    ``H0`` (exact for ``u' = u (r - gamma u)``), evaluated stably for ``r -> 0``."""
    z = r * tau
    small = jnp.abs(z) < 1e-6
    z_safe = jnp.where(small, 1.0, z)
    phi = jnp.where(small, 1.0 + 0.5 * z, jnp.expm1(z_safe) / z_safe)   # (e^z - 1) / z
    return H0 * jnp.exp(z) / (1.0 + gamma * H0 * tau * phi)


def normal_derivative(u, params, p, axis: int):
    """d u_hat / d x'_axis at the unit-box point ``p`` (axis 0 = x); ``u`` as in :class:`Ansatz`."""
    e = jnp.zeros_like(p).at[1 + axis].set(1.0)
    return jax.jvp(scalar_network(u, params), (p,), (e,))[1]
