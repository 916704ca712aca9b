"""Differentiable finite-volume solver for ``du/dt = div(D grad u) + u (r - gamma u)``.

Space: cell-centred finite volumes on a uniform grid; the flux through a face uses the harmonic
mean of D in the two cells (exact for a piecewise-constant D, and conservative), so the scheme is
second order for smooth D and handles sharp contrasts in D without spurious fluxes.

Time: Strang splitting of each step ``dt`` into

    R(dt/2) -> Diffusion(dt) -> R(dt/2)

where R is the *exact* solution of the logistic ODE ``u' = u (r - gamma u)`` in every cell (the
two half-steps that meet between steps are taken as one exact step, and its exponentials are
formed once per output interval). Diffusion sub-steps:

``"tridiagonal"``
    TR-BDF2 (second order, L-stable) with tridiagonal solves; in 2-D split by direction,
    ``Dx(dt/2) Dy(dt) Dx(dt/2)``. Unconditionally stable: no bound on D is needed, and one
    compiled program serves every parameter value. L-stability damps the stiff modes that
    Crank-Nicolson would leave ringing after a sharp initial condition.
``"spectral"``
    The exact exponential ``exp(A dt)`` of each line's operator, from an eigen-decomposition
    formed once per solve (2-D: split by direction as above). The diffusion is exact, so its time
    error is the splitting error alone: the reference for that error, not a fast path.
``"rkc"``
    Second-order Runge-Kutta-Chebyshev (RKC2; Sommeijer, Shampine & Verwer 1998, damping
    ``eps = 2/13``) on the whole 3- or 5-point stencil: ``s`` explicit stages per step, ``s`` the
    fewest whose real stability interval ``beta(s) ~ 0.65 s^2`` covers ``dt rho``, with
    ``rho = 4 D_max sum_k 1/h_k^2`` (Gershgorin). ``s`` is static (one compiled program), so it
    needs an upper bound ``D_max`` of D(x) over the parameters that will be passed: from the
    parameter box, :meth:`FiniteVolumeSolver.diffusion_bound`. At run time the actual operator
    is checked against the stages: a parameter set beyond them raises (``throw=True``) or gives
    NaN (``throw=False``, per element under ``vmap``). The reverse-mode derivative of a step is
    written by hand (``jax.custom_vjp``): A is symmetric, so the adjoint sweep applies the same
    stencil, and only the step's input is kept (the stages are recomputed). Automatic
    differentiation of the stages stored ~15 arrays per stage and was 3-5x slower. Forward mode
    (``jax.jvp``, ``jax.hessian``) is therefore not available with ``rkc``; ``jax.grad``,
    ``jax.vjp`` and ``vmap`` are.

Which is fastest, measured on the 2 shared CPU cores of the development machine (jax 0.10,
float64; ``python benchmarks/bench_solver.py`` writes the current figures and compares with
py-pde). XLA on CPU runs element-wise kernels at ~3 ns per cell update, plus a fixed cost per
kernel that dominates small grids:

* A TR-BDF2 step costs ~17 us in 1-D (256 cells: two LAPACK ``gtsv`` calls and the element-wise
  kernels around them) and ~0.75 ms in 2-D (64 x 64: six batched ``gtsv`` calls plus
  transposes). An RKC stage costs ~0.6 us in 1-D and ~12 us in 2-D, one fused kernel in a rolled
  loop over the stages. (Written out, the stages let XLA's fusion recompute chains of stencils
  inside single kernels: the same speed forward, 2-3x slower in reverse.) A tight bound needs
  3-7 stages at the default step, so ``rkc`` is ~4x faster in 1-D and ~15x in 2-D; a TR-BDF2
  step costs as much as ~26 (1-D) or ~60 (2-D) stages. ``auto`` therefore takes ``rkc`` when
  ``D_max`` is given and at most ``RKC_AUTO_MAX_STAGES`` stages per step suffice, and
  ``tridiagonal`` otherwise. ``spectral`` is never faster: the eigen-decompositions and two
  dense mat-vecs per line and step make a solve ~8x slower than TR-BDF2 in 1-D and 2-D (and a
  multi-threaded LAPACK ``eigh`` on a loaded machine can cost 100x more: set
  ``OPENBLAS_NUM_THREADS=1`` there).
* Step size. At the default step (output span / 200) the time error is far below the spatial
  error of the default grids: in 1-D 4e-6 (TR-BDF2) or 3e-5 (RKC) against 5e-5, and in 2-D ~1e-6
  against 5e-4 (relative L2). It grows as dt^2. The exact-diffusion ``spectral`` method has the
  same time error as TR-BDF2 at every step (the splitting error dominates both), so exact
  diffusion does not allow longer steps. Where the grid is coarse, a larger ``max_step`` is
  free accuracy-wise: in 2-D, span / 50 keeps the time error below 3e-5.
* Each output interval gets its own number of sub-steps (a short first interval, from the
  introduction to the first observation, takes few); the intervals with equal counts share one
  compiled loop. With ``n_sub`` given, every interval takes ``n_sub`` steps.
* ``vmap`` over parameter sets is no faster than a Python loop of solves on this CPU (the
  kernels are bound by cell updates, not by per-kernel costs, and 64 grids leave the caches).
  It is there for convenience and for accelerators.

Output times are hit exactly, and reverse-mode gradients re-compute each interval from its start
(``jax.checkpoint``), so memory grows with the number of output times, not of steps.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.lax.linalg import tridiagonal_solve

from ..model import FirstObservation, GaussianIntroductions, InitialField, ReactionDiffusion

_GAMMA = 2.0 - math.sqrt(2.0)  # TR-BDF2 stage fraction
METHODS = ("auto", "tridiagonal", "spectral", "rkc")
RKC_DAMPING = 2.0 / 13.0  # RKC2 damping (Sommeijer, Shampine & Verwer 1998)
# ``auto`` takes RKC up to this many stages per step (by dimension): a TR-BDF2 step costs as much
# as ~26 RKC stages in 1-D (256 cells) and ~60 in 2-D (64 x 64), measured; kept below with margin
RKC_AUTO_MAX_STAGES = {1: 16, 2: 40}


def _logistic_factors(r, g, dt):
    """(E, G) such that the exact solution of u' = u (r - g u) after dt is u E / (1 + G u).

    E = exp(r dt), G = g (exp(r dt) - 1) / r (continuous at r = 0); any sign of r, u >= 0.
    Formed once per output interval, so the time loop (and its reverse sweep) holds no exp.
    """
    rt = r * dt
    small = jnp.abs(rt) < 1e-8
    safe_r = jnp.where(small, 1.0, r)
    phi = jnp.where(small, dt * (1.0 + 0.5 * rt), jnp.expm1(rt) / safe_r)
    return jnp.exp(rt), g * phi


def _logistic(u, factors):
    E, G = factors
    return u * E / (1.0 + G * u)


class _Line(eqx.Module):
    """Tridiagonal 1-D diffusion operator along the last axis: A u + src."""

    lower: jax.Array  # coefficient of u[i-1] (0 at i = 0)
    upper: jax.Array  # coefficient of u[i+1] (0 at i = n-1)
    diag: jax.Array
    src: jax.Array  # Dirichlet boundary source

    def apply(self, u):
        left = jnp.concatenate([jnp.zeros_like(u[..., :1]), u[..., :-1]], axis=-1)
        right = jnp.concatenate([u[..., 1:], jnp.zeros_like(u[..., :1])], axis=-1)
        return self.lower * left + self.diag * u + self.upper * right + self.src

    def solve_shifted(self, a, rhs):
        """Solve (I - a A_hom) x = rhs along the last axis."""
        dl = -a * self.lower
        du = -a * self.upper
        d = 1.0 - a * self.diag
        return tridiagonal_solve(dl, d, du, rhs[..., None])[..., 0]

    def trbdf2(self, u, dt):
        """One TR-BDF2 step of u' = A u + src (tridiagonal solves; for long lines)."""
        a = 0.5 * _GAMMA * dt
        ustar = self.solve_shifted(a, u + a * self.apply(u) + a * self.src)
        c = (1.0 - _GAMMA) / (2.0 - _GAMMA) * dt
        rhs = (ustar - (1.0 - _GAMMA) ** 2 * u) / (_GAMMA * (2.0 - _GAMMA)) + c * self.src
        return self.solve_shifted(c, rhs)

    def spectral(self):
        """Eigen-decomposition of the (symmetric) operator, once per solve.

        With harmonic face means on a uniform grid the operator is a symmetric Jacobi matrix, so
        ``A = V diag(lam) V^T`` with distinct eigenvalues (hence well-defined derivatives), and
        every diffusion step ``exp(A dt)`` of any length is exact and costs two matrix-vector
        products: no new factorisation when dt changes between output intervals.
        """
        n = self.diag.shape[-1]
        A = (self.diag[..., :, None] * jnp.eye(n) + self.upper[..., :, None] * jnp.eye(n, k=1)
             + self.lower[..., :, None] * jnp.eye(n, k=-1))
        lam, V = jnp.linalg.eigh(A)
        return _Spectral(lam, V, jnp.einsum("...ji,...j->...i", V, self.src))


class _Spectral(eqx.Module):
    lam: jax.Array  # (..., n) eigenvalues (<= 0)
    V: jax.Array  # (..., n, n) orthonormal eigenvectors (columns)
    src: jax.Array  # V^T src

    def exp_map(self, dt):
        """u -> exp(A dt) u + A^{-1}(exp(A dt) - I) src, exactly."""
        z = self.lam * dt
        small = jnp.abs(z) < 1e-12
        growth = jnp.exp(z)
        phi = jnp.where(small, dt, jnp.expm1(z) / jnp.where(small, 1.0, self.lam))
        shift = phi * self.src

        def apply(u):
            c = jnp.einsum("...ji,...j->...i", self.V, u)
            return jnp.einsum("...ij,...j->...i", self.V, growth * c + shift)

        return apply


def _line_operator(D, h, boundary, value):
    """Operator along the last axis of the cell field D (harmonic face means)."""
    Dface = 2.0 * D[..., 1:] * D[..., :-1] / (D[..., 1:] + D[..., :-1]) / h**2
    zero = jnp.zeros_like(D[..., :1])
    lower = jnp.concatenate([zero, Dface], axis=-1)
    upper = jnp.concatenate([Dface, zero], axis=-1)
    diag = -(lower + upper)
    src = jnp.zeros_like(D)
    if boundary == "dirichlet":
        # boundary face at h/2 from the centre: flux D (u - g) / (h / 2)
        wall = jnp.zeros_like(D).at[..., 0].set(2.0 * D[..., 0] / h**2)
        wall = wall.at[..., -1].set(2.0 * D[..., -1] / h**2)
        diag = diag - wall
        src = wall * value
    return _Line(lower, upper, diag, src)


# --------------------------------------------------------------------------------------------
# Runge-Kutta-Chebyshev (RKC2)
# --------------------------------------------------------------------------------------------
@functools.cache
def rkc_coefficients(s: int, eps: float = RKC_DAMPING):
    """Coefficients of the s-stage RKC2 method and its stability interval ``beta(s)``.

    Verwer, Hundsdorfer & Sommeijer (2004), eqs. (2.8)-(2.10): with ``w0 = 1 + eps / s^2``,
    ``w1 = T_s'(w0) / T_s''(w0)`` and ``b_j = T_j''(w0) / T_j'(w0)^2`` (``b_0 = b_1 = b_2``),

        Y_1 = Y_0 + mu~_1 dt F(Y_0)
        Y_j = (1 - mu_j - nu_j) Y_0 + mu_j Y_{j-1} + nu_j Y_{j-2} + mu~_j dt F(Y_{j-1})
              + gamma~_j dt F(Y_0),                                        j = 2..s

    Returns ``(mu1t, mu, nu, mut, gt, beta)`` with arrays indexed by stage j (entries 0, 1 unused)
    and ``beta`` the length of the real stability interval [-beta, 0].
    """
    if s < 2:
        raise ValueError(f"RKC2 needs at least 2 stages, got {s}.")
    w0 = 1.0 + eps / s**2
    T = np.zeros(s + 1)
    dT = np.zeros(s + 1)
    ddT = np.zeros(s + 1)
    T[0], T[1], dT[1] = 1.0, w0, 1.0
    for j in range(2, s + 1):
        T[j] = 2.0 * w0 * T[j - 1] - T[j - 2]
        dT[j] = 2.0 * T[j - 1] + 2.0 * w0 * dT[j - 1] - dT[j - 2]
        ddT[j] = 4.0 * dT[j - 1] + 2.0 * w0 * ddT[j - 1] - ddT[j - 2]
    w1 = dT[s] / ddT[s]
    b = np.zeros(s + 1)
    b[2:] = ddT[2:] / dT[2:] ** 2
    b[0] = b[1] = b[2]
    a = 1.0 - b * T
    mu = np.zeros(s + 1)
    nu = np.zeros(s + 1)
    mut = np.zeros(s + 1)
    gt = np.zeros(s + 1)
    j = np.arange(2, s + 1)
    mu[2:] = 2.0 * b[j] * w0 / b[j - 1]
    nu[2:] = -b[j] / b[j - 2]
    mut[2:] = 2.0 * b[j] * w1 / b[j - 1]
    gt[2:] = -a[j - 1] * mut[2:]
    beta = (w0 + 1.0) * ddT[s] / dT[s]
    return b[1] * w1, mu, nu, mut, gt, float(beta)


def rkc_stages(rho_dt: float) -> int:
    """Fewest RKC2 stages whose stability interval covers ``dt * rho`` (``rho``: spectral radius)."""
    if not np.isfinite(rho_dt) or rho_dt < 0:
        raise ValueError(f"dt * rho must be finite and >= 0, got {rho_dt}.")
    s = max(2, int(math.ceil(math.sqrt(max(rho_dt, 0.0) / 0.65))) - 1)
    while rkc_coefficients(s)[-1] < rho_dt:
        s += 1
    return s


def _stencil_coefficients(offsets, faces, bc):
    """(diag, ((w(+o), w(-o)) per offset)) of the symmetric stencil from its face weights."""
    diag = 0.0
    weights = []
    for o, e in zip(offsets, faces, strict=True):
        behind = jnp.pad(e, (o, 0))[:e.shape[-1]]  # face between k - o and k
        weights.append((e, behind))
        diag = diag - e - behind
    if bc:
        diag = diag - bc[0]
    return diag, tuple(weights)


def _stencil_apply(offsets, diag, weights, src, u):
    """diag u + sum_o (w(+o) u[k+o] + w(-o) u[k-o]) (+ src), zeros beyond the ends."""
    n = u.shape[-1]
    p = max(offsets)
    up = jnp.pad(u, p)
    out = diag * u if src is None else diag * u + src
    for o, (wp, wm) in zip(offsets, weights, strict=True):
        out = out + wp * up[p + o:p + o + n] + wm * up[p - o:p - o + n]
    return out


def _rkc_run(offsets, s, faces, bc, dt, u, keep=False):
    """One s-stage RKC2 step of u' = A u + src; with ``keep`` also (Y_1..Y_{s-1}, their F, F0)."""
    diag, weights = _stencil_coefficients(offsets, faces, bc)
    F = functools.partial(_stencil_apply, offsets, diag, weights, bc[1] if bc else None)
    mu1t, mu, nu, mut, gt, _ = rkc_coefficients(s)
    coef = tuple(jnp.asarray(c[2:]) for c in (1.0 - mu - nu, mu, nu, mut, gt))
    f0 = F(u)

    def stage(carry, c):
        y1, y2 = carry
        cu, m, n_, mt, g_ = c
        f = F(y1)
        y = cu * u + m * y1 + n_ * y2 + (mt * dt) * f + (g_ * dt) * f0
        return (y, y1), ((y1, f) if keep else None)

    # a rolled loop over the stages: unrolled, XLA's CPU fusion recomputes chains of stencils
    # inside single kernels (the reverse sweep measured 2-3x slower)
    (y, _), hist = jax.lax.scan(stage, (u + (mu1t * dt) * f0, u), coef)
    return (y, hist, f0) if keep else y


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _rkc_step(offsets, s, faces, bc, dt, u):
    return _rkc_run(offsets, s, faces, bc, dt, u)


def _rkc_step_fwd(offsets, s, faces, bc, dt, u):
    return _rkc_run(offsets, s, faces, bc, dt, u), (faces, bc, dt, u)


def _rkc_step_bwd(offsets, s, res, ybar):
    """Reverse sweep of the stages (recomputed from the step's input: one residual per step).

    A is symmetric, so the adjoint of every stencil application is the same stencil; the
    cotangent of a face weight e between cells k and k + o, from a term <lam, A y>, is
    ``-(lam[k+o] - lam[k]) (y[k+o] - y[k])``; of a Dirichlet wall term ``wall (g - y)``,
    ``-lam y`` (wall) and ``lam`` (its source).
    """
    faces, bc, dt, u = res
    _, (ys, fs), f0 = _rkc_run(offsets, s, faces, bc, dt, u, keep=True)
    diag, weights = _stencil_coefficients(offsets, faces, bc)
    Ah = functools.partial(_stencil_apply, offsets, diag, weights, None)
    mu1t, mu, nu, mut, gt, _ = rkc_coefficients(s)
    coef = tuple(jnp.asarray(c[2:]) for c in (1.0 - mu - nu, mu, nu, mut, gt))

    def face_terms(lam, y):
        return tuple(-(jnp.pad(lam, (0, o))[o:] - lam) * (jnp.pad(y, (0, o))[o:] - y)
                     for o in offsets)

    def wall_terms(lam, y):
        return (-lam * y, lam) if bc else ()

    def stage(carry, x):  # stage j = s..2: Y_j = ... + mut_j dt F(Y_{j-1}) + gt_j dt F0
        b, b1, b2, ubar, f0bar, dtbar, fbar, wbar = carry
        (cu, m, n_, mt, g_), y_prev, f_prev = x
        lam = (mt * dt) * b
        carry = (b1 + m * b + Ah(lam), b2 + n_ * b, jnp.zeros_like(b), ubar + cu * b,
                 f0bar + (g_ * dt) * b, dtbar + b * (mt * f_prev + g_ * f0),
                 jax.tree.map(jnp.add, fbar, face_terms(lam, y_prev)),
                 jax.tree.map(jnp.add, wbar, wall_terms(lam, y_prev)))
        return carry, None

    zero = jnp.zeros_like(u)
    init = (ybar, zero, zero, zero, zero, zero,  # dtbar: summed over cells at the end
            tuple(zero for _ in offsets), tuple(zero for _ in bc))
    (b1, b0, _, ubar, f0bar, dtbar, fbar, wbar), _ = jax.lax.scan(
        stage, init, (coef, ys, fs), reverse=True)
    # Y_1 = Y_0 + mu1t dt F0, F0 = A Y_0 + src
    f0bar = f0bar + (mu1t * dt) * b1
    dtbar = jnp.sum(dtbar + mu1t * b1 * f0)
    ubar = ubar + b0 + b1 + Ah(f0bar)
    fbar = jax.tree.map(jnp.add, fbar, face_terms(f0bar, u))
    wbar = jax.tree.map(jnp.add, wbar, wall_terms(f0bar, u))
    return fbar, wbar, dtbar, ubar


_rkc_step.defvjp(_rkc_step_fwd, _rkc_step_bwd)


class _Stencil(eqx.Module):
    """The whole diffusion operator ``A u + src`` on the flattened grid (3- or 5-point stencil).

    ``faces[i][k]`` is the face coefficient (harmonic-mean D over h^2) between cells ``k`` and
    ``k + offsets[i]``, zero where there is no such neighbour, so the flattened shifts need no
    boundary branches; ``bc`` is ``()`` (no flux) or ``(wall, src)``: Dirichlet walls add
    ``wall (g - u)`` with ``src = wall g``. A is symmetric.
    """

    faces: tuple[jax.Array, ...]
    bc: tuple[jax.Array, ...]
    offsets: tuple[int, ...] = eqx.field(static=True)

    def apply(self, u):
        diag, weights = _stencil_coefficients(self.offsets, self.faces, self.bc)
        return _stencil_apply(self.offsets, diag, weights, self.bc[1] if self.bc else None, u)

    def spectral_bound(self):
        """Gershgorin bound of the spectral radius of A (its eigenvalues are real, <= 0)."""
        diag, weights = _stencil_coefficients(self.offsets, self.faces, self.bc)
        return jnp.max(jnp.abs(diag) + sum(wp + wm for wp, wm in weights))

    def rkc(self, u, dt, s: int):
        """One s-stage RKC2 step of u' = A u + src (reverse-mode derivative by hand)."""
        return _rkc_step(self.offsets, s, self.faces, self.bc, dt, u)


def _stencil_operator(D, spacing, boundary, value):
    """The flattened stencil of div(D grad .) on a 1-D or 2-D (ny, nx) grid."""
    if D.ndim == 1:
        faces, offsets = (_line_operator(D, spacing[0], "neumann", 0.0).upper,), (1,)
    else:
        hy, hx = spacing
        faces = (_line_operator(D, hx, "neumann", 0.0).upper.ravel(),
                 _line_operator(D.T, hy, "neumann", 0.0).upper.T.ravel())
        offsets = (1, D.shape[1])  # x and y neighbours in the row-major flattened grid
    if boundary != "dirichlet":
        return _Stencil(faces, (), offsets=offsets)
    # boundary faces at h/2 from the centre: flux D (u - g) / (h / 2), per axis
    wall = jnp.zeros_like(D)
    for axis, h in zip(range(D.ndim), spacing, strict=True):
        edge = np.zeros(D.shape[axis], dtype=bool)
        edge[[0, -1]] = True
        edge = edge.reshape((-1,) + (1,) * (D.ndim - 1 - axis))
        wall = wall + jnp.where(edge, 2.0 * D / h**2, 0.0)
    wall = wall.ravel()
    return _Stencil(faces, (wall, wall * value), offsets=offsets)


# --------------------------------------------------------------------------------------------
# Planning (plain functions of static data: solve() runs them on every call)
# --------------------------------------------------------------------------------------------
def _steps_per_interval(max_step, t_save, t0):
    """Sub-steps of each output interval so that no step exceeds max_step (a tuple)."""
    t = np.concatenate([[float(t0)], np.asarray(t_save, dtype=float).ravel()])
    gaps = np.diff(t)
    if np.any(gaps < 0):
        raise ValueError("Output times must be >= t0 and non-decreasing.")
    span = t[-1] - t[0]
    hmax = max_step if max_step is not None else max(span, 1e-300) / 200.0
    return tuple(max(1, int(math.ceil(g / hmax - 1e-9))) for g in gaps), gaps


def _rho_bound(D_max, spacing):
    return None if D_max is None else 4.0 * D_max * sum(1.0 / h**2 for h in spacing)


def _concrete(x):
    """x as a float numpy array, or None when it is traced."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x, dtype=float)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _plan(solver, t_save, t0, n_sub):
    """(method, n_sub, n_stages, longest step or None): static choices of one solve."""
    t_arr, t0_arr = _concrete(t_save), _concrete(t0)
    dt = None
    if n_sub is not None:
        n_sub = int(n_sub)
        if n_sub < 1:
            raise ValueError(f"n_sub must be a positive integer, got {n_sub}.")
    if t_arr is not None and t0_arr is not None:
        counts, gaps = _steps_per_interval(solver.max_step, t_arr, t0_arr)
        if n_sub is None:
            # each interval its own count: a short first interval takes few steps
            n_sub = counts[0] if len(set(counts)) == 1 else counts
        per = np.broadcast_to(np.asarray(n_sub), gaps.shape)
        dt = float(np.max(gaps / per)) if gaps.size else 0.0
    elif n_sub is None:
        raise ValueError("With traced output times or t0, pass n_sub (static) to solve.")
    method = solver.method
    if method not in ("auto", "rkc"):
        return method, n_sub, 0, dt
    ndim = len(solver.shape)
    bound = dt if dt is not None else solver.max_step
    if bound is None:
        if method == "auto":
            return "tridiagonal", n_sub, 0, dt
        raise ValueError("method='rkc' with traced output times needs max_step=... "
                         "(the longest step; it sizes the RKC stages).")
    bounds = [solver.model.domain.x] if ndim == 1 else [solver.model.domain.y,
                                                        solver.model.domain.x]
    spacing = [(b[1] - b[0]) / n for b, n in zip(bounds, solver.shape, strict=True)]
    n_stages = rkc_stages(_rho_bound(solver.D_max, spacing) * bound)
    if method == "auto" and n_stages > RKC_AUTO_MAX_STAGES[ndim]:
        return "tridiagonal", n_sub, 0, dt
    return "rkc", n_sub, n_stages, dt


class FiniteVolumeSolver(eqx.Module):
    """Finite-volume solver of a :class:`~physreg.model.ReactionDiffusion` model.

    Parameters
    ----------
    model : ReactionDiffusion
    shape : int or (ny, nx)
        Number of cells (1-D) or cells along y and x (2-D). Default 256 in 1-D, (64, 64) in 2-D.
    max_step : float, optional
        Largest time step, user time units. Default: the time span over 200, set at solve time
        from the output times.
    method : {"auto", "tridiagonal", "spectral", "rkc"}
        Diffusion sub-step (see the module docstring): TR-BDF2 with tridiagonal solves, the exact
        exponential of each line ("spectral"), or explicit Runge-Kutta-Chebyshev stages ("rkc",
        needs ``D_max``). ``"auto"`` takes the fastest accurate one as measured on CPU: ``rkc``
        when ``D_max`` is given and at most ``RKC_AUTO_MAX_STAGES[ndim]`` stages per step
        suffice (decided per solve, from the step), else ``tridiagonal`` (decided here when
        there is no ``D_max``). :meth:`plan` tells which.
    D_max : float, optional
        Upper bound of D(x) over the grid for every parameter set that will be solved (user
        units), e.g. ``FiniteVolumeSolver.diffusion_bound(model, bounds, cov)``. It sizes the
        static RKC stage count; a looser bound only costs stages.
    throw : bool
        ``rkc`` only: a parameter set whose operator is stiffer than the stages allow (D(x)
        beyond ``D_max``) raises at run time if True, and gives NaN if False (per element under
        ``vmap``: for samplers and batched fits).

    Examples
    --------
    >>> solver = FiniteVolumeSolver(model, shape=200)
    >>> u = solver.solve({"D": 0.1, "r": 1.0, "gamma": 1.0}, t_save=np.linspace(0, 5, 6), u0=u0)
    >>> D_max = FiniteVolumeSolver.diffusion_bound(model, bounds, cov)   # from the parameter box
    >>> fast = FiniteVolumeSolver(model, shape=200, D_max=D_max)        # RKC stages
    """

    model: ReactionDiffusion = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    max_step: float | None = eqx.field(static=True, default=None)
    method: str = eqx.field(static=True, default="auto")
    D_max: float | None = eqx.field(static=True, default=None)
    throw: bool = eqx.field(static=True, default=True)

    def __init__(self, model: ReactionDiffusion, shape=None, max_step: float | None = None,
                 method: str = "auto", *, D_max: float | None = None, throw: bool = True):
        if not isinstance(model, ReactionDiffusion):
            raise TypeError(f"model must be a ReactionDiffusion, got {type(model).__name__}.")
        if shape is None:
            shape = (256,) if model.ndim == 1 else (64, 64)
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        if len(shape) != model.ndim:
            raise ValueError(f"shape {shape} does not match a {model.ndim}-D model.")
        if min(shape) < 3:
            raise ValueError(f"shape {shape}: at least 3 cells per axis are needed.")
        if max_step is not None and not max_step > 0:
            raise ValueError(f"max_step must be positive, got {max_step}.")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
        if D_max is not None:
            D_max = float(D_max)
            if not (np.isfinite(D_max) and D_max > 0):
                raise ValueError(f"D_max must be a positive finite bound of D(x), got {D_max}.")
        if method == "rkc" and D_max is None:
            raise ValueError("method='rkc' sizes its explicit stages from an upper bound of D(x); "
                             "pass it, e.g. FiniteVolumeSolver(model, shape, method='rkc', "
                             "D_max=FiniteVolumeSolver.diffusion_bound(model, bounds, cov)).")
        if method == "auto" and D_max is None:
            method = "tridiagonal"  # explicit stages need a bound of D: decided now, not per solve
        self.model = model
        self.shape = shape
        self.max_step = None if max_step is None else float(max_step)
        self.method = method
        self.D_max = D_max
        self.throw = bool(throw)

    # ---- grid -------------------------------------------------------------------------
    @property
    def spacing(self) -> tuple[float, ...]:
        """Cell sizes (hy, hx) in 2-D, (hx,) in 1-D (same order as ``shape``)."""
        bounds = [self.model.domain.x] if self.model.ndim == 1 else [self.model.domain.y,
                                                                     self.model.domain.x]
        return tuple((b[1] - b[0]) / n for b, n in zip(bounds, self.shape, strict=True))

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        """Cell-centre coordinates per axis, (x,) in 1-D or (y, x) in 2-D."""
        bounds = [self.model.domain.x] if self.model.ndim == 1 else [self.model.domain.y,
                                                                     self.model.domain.x]
        return tuple(b[0] + (np.arange(n) + 0.5) * h
                     for b, n, h in zip(bounds, self.shape, self.spacing, strict=True))

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Broadcastable centre arrays: (x,) in 1-D, (y[:, None], x[None, :]) in 2-D."""
        c = self.centres
        return c if len(c) == 1 else (c[0][:, None], c[1][None, :])

    def steps_per_interval(self, t_save, t0) -> int:
        """Sub-steps of the longest output interval so that no step exceeds ``max_step``
        (:meth:`solve` gives every interval its own count)."""
        return max(_steps_per_interval(self.max_step, t_save, t0)[0], default=1)

    # ---- method choice ------------------------------------------------------------------
    def spectral_radius_bound(self) -> float | None:
        """Static bound ``4 D_max sum_k 1/h_k^2`` of the diffusion operator's spectral radius."""
        return _rho_bound(self.D_max, self.spacing)

    def plan(self, t_save, t0=None, n_sub: int | None = None) -> dict:
        """How :meth:`solve` will integrate: ``{"method", "n_sub", "n_stages", "dt"}``.

        ``method`` is the resolved diffusion method (``"auto"`` decided), ``n_sub`` the sub-steps
        per output interval, ``n_stages`` the RKC stages per step (0 for implicit methods) and
        ``dt`` the longest step (None when the times are traced).
        """
        return dict(zip(("method", "n_sub", "n_stages", "dt"),
                        _plan(self, t_save, t_save[0] if t0 is None else t0, n_sub), strict=True))

    @staticmethod
    def diffusion_bound(model: ReactionDiffusion, bounds: Mapping, cov: Mapping | None = None
                        ) -> float:
        """Largest D(x) on the grid of ``cov`` over a box of parameters: a ``D_max``.

        ``log D(x) = log D + sum_k D_<z_k> z_k(x)``: its maximum over the box is
        ``log D_hi + sum_k max(lo_k z_k(x), hi_k z_k(x))``, then the maximum over x.
        ``bounds`` maps ``"D"`` and each ``"D_<z>"`` to ``(lower, upper)`` or to a fixed value;
        ``cov`` maps each covariate of the D link to its values on the grid.
        """
        def box(name):
            if name not in bounds:
                raise ValueError(f"bounds has no entry for {name!r} (needed for D(x)); give "
                                 "(lower, upper) or a fixed value.")
            b = np.atleast_1d(np.asarray(bounds[name], dtype=float))
            return float(b.min()), float(b.max())

        eta = np.log(box("D")[1])
        for c in model.D.covariates:
            if cov is None or c not in cov:
                raise ValueError(f"Covariate {c!r} of the D link is needed (cov={{{c!r}: ...}}).")
            z = np.asarray(cov[c], dtype=float)
            lo, hi = box(f"D_{c}")
            eta = eta + np.maximum(lo * z, hi * z)
        return float(np.exp(np.max(eta)))

    # ---- operators and one step -----------------------------------------------------------
    def _operators(self, D):
        m = self.model
        if m.ndim == 1:
            return (_line_operator(D, self.spacing[0], m.boundary, m.boundary_value),)
        hy, hx = self.spacing
        opx = _line_operator(D, hx, m.boundary, m.boundary_value)
        opy = _line_operator(D.T, hy, m.boundary, m.boundary_value)
        return opx, opy

    def _diffusion(self, method, ops, dt, n_stages):
        """The map u -> u after a diffusion sub-step of length dt."""
        if method == "rkc":
            (op,) = ops
            return lambda u: op.rkc(u, dt, n_stages)
        if method == "spectral":
            line = lambda op, h: op.exp_map(h)
        else:
            line = lambda op, h: (lambda u: op.trbdf2(u, h))
        if len(ops) == 1:
            return line(ops[0], dt)
        sx, sy = line(ops[0], 0.5 * dt), line(ops[1], dt)
        return lambda u: sx(sy(sx(u).T).T)

    # ---- initial condition --------------------------------------------------------------
    def initial_field(self, params: Mapping, u0=None):
        ic = self.model.initial
        if isinstance(ic, GaussianIntroductions):
            field = ic.cell_average(params, self.mesh(), self.spacing)
            return jnp.broadcast_to(field, self.shape).astype(float)
        if u0 is None:
            if isinstance(ic, InitialField):
                return jnp.asarray(self.interpolate_field(ic.values, ic.x, ic.y))
            raise ValueError(f"The initial condition {type(ic).__name__} needs `u0` on the grid "
                             "(see FiniteVolumeSolver.interpolate_field).")
        u0 = jnp.asarray(u0, dtype=float)
        if u0.shape != self.shape:
            raise ValueError(f"u0 has shape {u0.shape}, the grid is {self.shape}.")
        return u0

    def interpolate_field(self, values, x, y=None) -> np.ndarray:
        """Linear interpolation of a field given on coordinates (x[, y]) onto the cell centres."""
        from scipy.interpolate import RegularGridInterpolator

        values = np.asarray(values, dtype=float)
        if self.model.ndim == 1:
            return np.interp(self.centres[0], np.asarray(x, float), values)
        pts = np.stack(np.meshgrid(*self.centres, indexing="ij"), axis=-1)
        yy, xx = np.asarray(y, float), np.asarray(x, float)
        pts[..., 0] = np.clip(pts[..., 0], yy[0], yy[-1])
        pts[..., 1] = np.clip(pts[..., 1], xx[0], xx[-1])
        return RegularGridInterpolator((yy, xx), values)(pts)

    # ---- solve --------------------------------------------------------------------------
    def solve(self, params: Mapping, t_save, *, u0=None, t0=None, cov: Mapping | None = None,
              n_sub: int | None = None):
        """Solution on the grid at the output times.

        Parameters
        ----------
        params : mapping name -> value (user units), every parameter of the model.
        t_save : (n_t,) output times, non-decreasing, >= t0.
        u0 : initial field on the grid (for ``InitialField``/``FirstObservation``).
        t0 : start time; default the model's ``t0`` (``ic_t0`` if fitted) or ``t_save[0]``.
        cov : covariate fields on the grid (name -> array of the grid shape).
        n_sub : sub-steps per output interval (static, the same for every interval). If None,
            each interval gets the fewest steps no longer than ``max_step``; pass it when
            ``t_save`` or ``t0`` are traced (``method="rkc"`` then also needs ``max_step``, which
            sizes its stages).

        Returns
        -------
        (n_t, *shape) array.

        Raises
        ------
        ValueError
            Missing covariates, decreasing output times, traced times without ``n_sub``.
            With ``method="rkc"`` and ``throw=True``, also when D(x) is beyond what ``D_max``
            sized the stages for (an ``EquinoxRuntimeError`` inside the caller's jit or vmap).
        """
        ic = self.model.initial
        if t0 is None:
            if isinstance(ic, GaussianIntroductions):
                t0 = params["ic_t0"] if ic.fit_t0 else ic.t0
            elif isinstance(ic, InitialField):
                t0 = ic.t0
            else:
                t0 = t_save[0]
        missing = [c for c in self.model.covariates if cov is None or c not in cov]
        if missing:
            raise ValueError(f"Covariates {missing} are needed on the grid (cov=...).")
        method, n_sub, n_stages, _ = _plan(self, t_save, t0, n_sub)
        us, ok = _solve(self, dict(params), t_save, u0, t0, dict(cov or {}), n_sub, method,
                        n_stages)
        if method == "rkc" and self.throw:
            msg = _RKC_UNSTABLE.format(self.D_max)
            if isinstance(ok, jax.core.Tracer):  # inside the caller's jit / grad / vmap
                us = eqx.error_if(us, jnp.logical_not(ok), msg)
            elif not bool(ok):
                raise ValueError(msg)
        return us


# jax.jit (not eqx.filter_jit): Python numbers in params are traced, not baked in (one compilation
# for every parameter value), and the dispatch is cheaper; the solver is static (hashable).
@functools.partial(jax.jit, static_argnums=(0, 6, 7, 8))
def _solve(solver: FiniteVolumeSolver, params, t_save, u0, t0, cov, n_sub, method, n_stages):
    model = solver.model
    t_save = jnp.asarray(t_save, dtype=float)
    t0 = jnp.asarray(t0, dtype=float)
    params = {k: jnp.asarray(v, dtype=float) for k, v in params.items()}
    covg = {k: jnp.broadcast_to(jnp.asarray(v, float), solver.shape) for k, v in cov.items()}
    D, r, g = model.fields(params, covg)
    D = jnp.broadcast_to(D, solver.shape)
    r = jnp.broadcast_to(r, solver.shape)
    g = jnp.broadcast_to(g, solver.shape)
    u = solver.initial_field(params, u0)
    if method == "rkc":  # the whole stencil on the flattened grid
        ops = (_stencil_operator(D, solver.spacing, model.boundary, model.boundary_value),)
        u, r, g = u.ravel(), r.ravel(), g.ravel()
    else:
        ops = solver._operators(D)
        if method == "spectral":
            ops = tuple(op.spectral() for op in ops)

    def interval(n):
        @jax.checkpoint
        def run(u, t_pair):
            ta, tb = t_pair
            dt = (tb - ta) / n
            diffuse = solver._diffusion(method, ops, dt, n_stages)
            # R(dt/2) [D(dt) R(dt)]^(n-1) D(dt) R(dt/2): the exact half-steps that meet are merged
            half, full = _logistic_factors(r, g, 0.5 * dt), _logistic_factors(r, g, dt)
            u = _logistic(u, half)
            u = jax.lax.fori_loop(0, n - 1, lambda _, v: _logistic(diffuse(v), full), u)
            u = _logistic(diffuse(u), half)
            return u, u

        return run

    starts = jnp.concatenate([t0[None], t_save[:-1]])
    counts = (n_sub,) * t_save.shape[0] if isinstance(n_sub, int) else n_sub
    parts, a = [], 0
    for n, run in itertools.groupby(counts):  # one scan per run of equal step counts
        b = a + len(list(run))
        u, us = jax.lax.scan(interval(n), u, (starts[a:b], t_save[a:b]))
        parts.append(us)
        a = b
    us = parts[0] if len(parts) == 1 else jnp.concatenate(parts)
    ok = jnp.asarray(True)
    if method == "rkc":
        us = us.reshape((-1,) + solver.shape)
        # the static stages cover dt * rho <= beta(s): check the actual operator and steps
        dt_max = jnp.max((t_save - starts) / jnp.asarray(counts, dtype=float))
        ok = ops[0].spectral_bound() * dt_max <= rkc_coefficients(n_stages)[-1] * (1.0 + 1e-12)
        us = jnp.where(ok, us, jnp.nan)
    return us, ok


_RKC_UNSTABLE = ("method='rkc': the diffusion operator is stiffer than the RKC stages were sized "
                 "for (D(x) above D_max={} or steps longer than max_step). Raise D_max to cover "
                 "the parameters, or use method='tridiagonal'; throw=False gives NaN instead.")


# --------------------------------------------------------------------------------------------
# Observation operator
# --------------------------------------------------------------------------------------------
class ObservationOperator(eqx.Module):
    """Linear map from grid snapshots to observation values: point values or areal means.

    ``apply(us)`` with ``us`` of shape (n_t, *grid) returns (n_obs,) values, where observation
    ``k`` is ``sum_j w[k, j] * us[tidx[k]].ravel()[idx[k, j]]``.
    """

    tidx: jax.Array
    idx: jax.Array
    w: jax.Array

    def apply(self, us):
        flat = us.reshape(us.shape[0], -1)
        return jnp.sum(flat[self.tidx[:, None], self.idx] * self.w, axis=-1)


def _axis_weights(c, q, extrapolate):
    """Indices (n, 2) and weights (n, 2) of linear interpolation on sorted centres c."""
    h = c[1] - c[0]
    s = (q - c[0]) / h
    i = np.clip(np.floor(s).astype(int), 0, len(c) - 2)
    f = s - i
    if not extrapolate:
        f = np.clip(f, 0.0, 1.0)
    return np.stack([i, i + 1], -1), np.stack([1.0 - f, f], -1)


def _quadrature(n_pts: int, radius=None, cell_size=None):
    """Offsets (m, 2) [dy, dx] and weights (m,) averaging over a disk or a square cell."""
    g = (np.arange(n_pts) + 0.5) / n_pts - 0.5  # midpoint rule on [-1/2, 1/2]
    dy, dx = np.meshgrid(g, g, indexing="ij")
    off = np.stack([dy.ravel(), dx.ravel()], -1)
    if radius is not None:
        off = off * 2.0 * radius
        off = off[np.hypot(off[:, 0], off[:, 1]) <= radius]
    else:
        off = off * cell_size
    return off, np.full(len(off), 1.0 / len(off))


def observation_operator(solver: FiniteVolumeSolver, time_index, x, y=None, *, radius=None,
                         cell_size=None, n_quad: int = 6) -> ObservationOperator:
    """Build the :class:`ObservationOperator` for observations at (x[, y]) and time indices.

    ``radius`` or ``cell_size`` (scalar or per observation) make the observation the mean of u
    over a disk or a square cell (midpoint quadrature with ``n_quad`` points per axis); points
    of the support that fall outside the domain are clamped to it.
    """
    dirichlet = solver.model.boundary == "dirichlet"
    x = np.atleast_1d(np.asarray(x, float))
    n = len(x)
    areal = radius is not None or cell_size is not None
    if solver.model.ndim == 1:
        (cx,) = solver.centres
        if areal:
            half = np.broadcast_to(np.asarray(radius if radius is not None else 0.5 * cell_size,
                                              float), (n,))
            g = (np.arange(n_quad) + 0.5) / n_quad * 2.0 - 1.0
            q = x[:, None] + half[:, None] * g[None, :]
            q = np.clip(q, *solver.model.domain.x)
            i, w = _axis_weights(cx, q, dirichlet)
            idx, wt = i.reshape(n, -1), (w / n_quad).reshape(n, -1)
        else:
            idx, wt = _axis_weights(cx, x, dirichlet)
    else:
        cy, cx = solver.centres
        y = np.atleast_1d(np.asarray(y, float))
        if areal:
            parts = []
            for k in range(n):
                rk = None if radius is None else float(np.broadcast_to(radius, (n,))[k])
                ck = None if cell_size is None else float(np.broadcast_to(cell_size, (n,))[k])
                off, qw = _quadrature(n_quad, rk, ck)
                parts.append((y[k] + off[:, 0], x[k] + off[:, 1], qw))
            m = max(len(p[2]) for p in parts)
            qy = np.zeros((n, m))
            qx = np.zeros((n, m))
            qw = np.zeros((n, m))
            for k, (a, b, c) in enumerate(parts):
                qy[k, : len(a)], qx[k, : len(b)], qw[k, : len(c)] = a, b, c
                qy[k, len(a):], qx[k, len(b):] = y[k], x[k]
        else:
            qy, qx, qw = y[:, None], x[:, None], np.ones((n, 1))
        qy = np.clip(qy, *solver.model.domain.y)
        qx = np.clip(qx, *solver.model.domain.x)
        iy, wy = _axis_weights(cy, qy, dirichlet)
        ix, wx = _axis_weights(cx, qx, dirichlet)
        flat = iy[..., :, None] * len(cx) + ix[..., None, :]
        wts = wy[..., :, None] * wx[..., None, :] * qw[..., None, None]
        idx, wt = flat.reshape(n, -1), wts.reshape(n, -1)
    return ObservationOperator(jnp.asarray(np.asarray(time_index, int)), jnp.asarray(idx),
                               jnp.asarray(wt))


__all__ = ["FiniteVolumeSolver", "ObservationOperator", "observation_operator",
           "FirstObservation"]
