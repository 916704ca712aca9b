"""Training and checking the hypernetwork metamodels.

Two sources of signal, combined with weights (:func:`train_metamodel`):

- ``data_weight``: *supervised* mean squared error against finite-volume solutions
  (:func:`solver_snapshots`) at theta sampled over the box, on a (time x site) grid;
- ``residual_weight``: the Fisher-KPP residual (the PINN loss) at fresh random theta and
  collocation points, in scaled units ``T (u_t - D u_xx - u (r - gamma u))``.

``data_weight=0`` is a pure physics-trained HyperPINN (no solver call at all); ``residual_weight=0``
a pure surrogate of the solver. The training loop is plain Adam with a cosine-decayed step,
``steps_per_call`` steps per compiled ``lax.scan``.

:func:`relative_errors` measures a metamodel against the solver: relative L2 error of the whole
(time x site) field at each held-out theta.
"""

from __future__ import annotations

import time as _time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._hyper import FKPPSetup, FKPPSetup2D, HyperPINN

__all__ = ["solver_snapshots", "sample_box", "train_metamodel", "relative_errors",
           "default_grid", "solver_2d"]


def default_grid(setup: FKPPSetup | FKPPSetup2D, n_t: int = 40, n_x: int = 128):
    """Training / evaluation grid: ``n_t`` times in ``(t0, t_max]`` and ``n_x`` cell centres.

    2-D: ``(t, y, x)``, the sites being the cell centres of the setup's solver grid (`n_x`
    ignored).
    """
    t = setup.t0 + setup.span * np.arange(1, n_t + 1) / n_t
    if setup.ndim == 2:
        y, x = setup.centres()
        return t, y, x
    lo, hi = setup.domain
    x = lo + (hi - lo) * (np.arange(n_x) + 0.5) / n_x
    return t, x


def sample_box(setup: FKPPSetup, n: int, seed: int = 0, *, scheme: str = "sobol") -> np.ndarray:
    """``(n, p)`` theta in the box: scrambled Sobol (default) or ``"uniform"`` random,
    uniform on the normalised scale (log scale for D and gamma)."""
    p = len(setup.names)
    if scheme == "sobol":
        from scipy.stats import qmc

        u = qmc.Sobol(p, scramble=True, seed=seed).random(n)
    elif scheme == "uniform":
        u = np.random.default_rng(seed).random((n, p))
    else:
        raise ValueError(f"scheme must be 'sobol' or 'uniform', got {scheme!r}.")
    return _from_unit(setup, u)


def _from_unit(setup, u):
    cols = []
    for i, n in enumerate(setup.names):
        a, b = setup.lower[i], setup.upper[i]
        if n in ("D", "gamma"):
            cols.append(np.exp(np.log(a) + u[:, i] * (np.log(b) - np.log(a))))
        else:
            cols.append(a + u[:, i] * (b - a))
    return np.clip(np.stack(cols, -1), setup.lower, setup.upper)


def _solver(setup: FKPPSetup, n_cells: int):
    from ..model import Domain, GaussianIntroductions, Link, ReactionDiffusion
    from ..solvers import FiniteVolumeSolver

    model = ReactionDiffusion(domain=Domain(x=tuple(setup.domain)), D=Link("log", ()),
                              r=Link("identity", ()), competition="gamma", boundary="neumann",
                              initial=GaussianIntroductions(n=1, t0=float(setup.t0)))
    return FiniteVolumeSolver(model, shape=int(n_cells))


def solver_2d(setup: FKPPSetup2D):
    """The finite-volume solver a 2-D metamodel imitates, and its covariates on the grid.

    ``setup.grid`` cells, the explicit RKC stepper sized for the largest D of the box (rounded
    up as :class:`physreg.SolverEstimator` rounds it, so that an estimator with the box as its
    bounds of D picks the same stages) and at most ``span / 200`` per step.
    """
    from ..data import interpolate_covariates
    from ..model import Domain, GaussianIntroductions, Link, ReactionDiffusion
    from ..solvers import FiniteVolumeSolver

    model = ReactionDiffusion(domain=Domain(x=tuple(setup.domain_x), y=tuple(setup.domain_y)),
                              D=Link("log", ()), r=Link("identity", tuple(setup.covariates)),
                              competition="gamma", boundary="neumann",
                              initial=GaussianIntroductions(n=1, t0=float(setup.t0)))
    rates = setup.rates(np.asarray(setup.upper, float))
    d_max = float(rates["D"])
    d_max = float(10.0 ** (np.ceil(16 * np.log10(d_max)) / 16))
    solver = FiniteVolumeSolver(model, shape=tuple(setup.grid),
                                max_step=setup.span / 200 * (1 + 1e-9),
                                method="rkc", D_max=d_max, throw=False)
    cov = {}
    if setup.covariates:
        yy, xx = solver.mesh()
        cov = interpolate_covariates(setup.covariate_dataset(),
                                     x=np.broadcast_to(xx, solver.shape),
                                     y=np.broadcast_to(yy, solver.shape))
    return solver, cov


def solver_snapshots(setup: FKPPSetup | FKPPSetup2D, theta, t, *, n_cells: int = 256, x=None,
                     batch: int = 256):
    """Finite-volume solutions at each theta ``(n, p)`` and times ``t`` -> ``(n, n_t, n_x)``.

    Returned on the solver's cell centres (``n_cells``), or interpolated linearly to ``x``.
    2-D: ``(n, n_t, n_y, n_x)`` on the cell centres of :func:`solver_2d` (``setup.grid``;
    `n_cells` and `x` unused).
    """
    if setup.ndim == 2:
        return _snapshots_2d(setup, theta, t, batch=min(batch, 64))
    solver = _solver(setup, n_cells)
    c, w, m = setup.ic
    t = jnp.asarray(t, float)

    def one(th):
        p = {k: jnp.asarray(v, float) for k, v in setup.rates(th).items()}
        p.update(ic_x=c, ic_width=w, ic_mass=m)
        u = solver.solve(p, t)
        if x is None:
            return u
        return jax.vmap(lambda row: jnp.interp(jnp.asarray(x), solver.centres[0], row))(u)

    f = jax.jit(jax.vmap(one))
    theta = np.asarray(theta, float)
    out = [np.asarray(f(jnp.asarray(theta[i:i + batch]))) for i in range(0, len(theta), batch)]
    return np.concatenate(out)


def _snapshots_2d(setup: FKPPSetup2D, theta, t, batch: int):
    solver, cov = solver_2d(setup)
    cx, cy, w, m = setup.ic
    t = np.asarray(t, float)

    def one(th):
        p = {k: jnp.asarray(v, float) for k, v in setup.rates(th).items()}
        p.update(ic_x=cx, ic_y=cy, ic_width=w, ic_mass=m)
        return solver.solve(p, t, cov=cov)

    f = jax.jit(jax.vmap(one))
    theta = np.asarray(theta, float)
    out = [np.asarray(f(jnp.asarray(theta[i:i + batch])), np.float32)
           for i in range(0, len(theta), batch)]
    return np.concatenate(out)


def _residual(model: HyperPINN, theta, tp, xp):
    """Scaled Fisher-KPP residual at one theta and points ``(tp, xp)`` in [0, 1]^2."""
    s = model.setup
    layers = model.target_weights(theta)
    rates = s.rates(theta)
    D, r, g = (jnp.asarray(rates[k], jnp.float32) for k in ("D", "r", "gamma"))
    T, L = s.span, s.length

    def u(a, b):  # scaled inputs -> u, float32 throughout
        t = s.t0 + T * a
        x = s.domain[0] + L * b
        c, w, m = s.ic
        var = w**2 + 2.0 * D * (t - s.t0)
        h = 0.0
        for centre in (c, 2.0 * s.domain[0] - c, 2.0 * s.domain[1] - c):
            h = h + jnp.exp(-0.5 * (x - centre) ** 2 / var)
        h = m * h / jnp.sqrt(2.0 * jnp.pi * var)
        return h + a * model._net(layers, a, b)

    def point(a, b):
        ut = jax.jvp(lambda aa: u(aa, b), (a,), (jnp.ones_like(a),))[1]
        ux = lambda bb: jax.jvp(lambda z: u(a, z), (bb,), (jnp.ones_like(bb),))[1]  # noqa: E731
        uxx = jax.jvp(ux, (b,), (jnp.ones_like(b),))[1]
        uu = u(a, b)
        return ut - D * T / L**2 * uxx - T * uu * (r - g * uu)

    return jax.vmap(point)(tp, xp)


def train_metamodel(model: HyperPINN, *, theta_train=None, u_train=None, t_grid=None,
                    x_grid=None, y_grid=None, data_weight: float = 1.0,
                    residual_weight: float = 0.0,
                    steps: int = 5000, lr: float = 3e-3, batch_theta: int = 16,
                    batch_points: int = 512, steps_per_call: int = 250, seed: int = 0,
                    time_power: float = 1.0, time_budget: float | None = None,
                    loss_scale: str = "linear", grad_clip: float | None = None,
                    verbose: bool = False):
    """Train a metamodel with Adam (cosine decay from `lr`); returns ``(model, record)``.

    **Arguments:**

    - `theta_train` ``(n, p)``, `u_train` ``(n, n_t, n_x)`` on `t_grid` x `x_grid`: supervised
      data (needed when ``data_weight > 0``; see :func:`solver_snapshots`); 2-D:
      ``(n, n_t, n_y, n_x)`` on `t_grid` x `y_grid` x `x_grid`.
    - `data_weight`, `residual_weight`: weights of the two losses (see the module docstring).
    - `batch_theta` theta per step; `batch_points` points per theta for each loss.
    - `time_power`: collocation times of the residual are ``t' = U^time_power`` (U uniform):
      a power > 1 puts more of them near the initial time, where a PINN first goes wrong.
    - `time_budget`: stop after this many seconds (checked between compiled chunks).
    - `loss_scale`: ``"linear"`` (squared error of u) or ``"sqrt"`` (squared error of
      ``sqrt(u)``: the variance-stabilising scale of counts, so the error is weighed as a
      Poisson likelihood weighs it, ``(du)^2 / 4u``; negative predictions count as 0).
    - `grad_clip`: clip the gradient to this global norm before Adam (``None``: no
      clipping). Measured on the 2-D ``full_log_focus90`` variant of
      ``studies/metamodel_quality_2d.py``: unclipped, its loss jumped from 4e-4 to 0.35
      near step 8000 and ended at 1e-4, 14x its sibling's.

    `record` has ``loss`` (mean per chunk of `steps_per_call` steps), ``grad_norm_median`` and
    ``grad_norm_max`` (the gradient's global norm, before clipping, per chunk), ``steps``
    (done), ``train_s``, ``compile_s``.
    """
    setup = model.setup
    if data_weight > 0 and (u_train is None or theta_train is None):
        raise ValueError("data_weight > 0 needs theta_train and u_train (solver_snapshots).")
    if data_weight <= 0 and residual_weight <= 0:
        raise ValueError("at least one of data_weight and residual_weight must be positive.")
    if loss_scale not in ("linear", "sqrt"):
        raise ValueError(f"loss_scale must be 'linear' or 'sqrt', got {loss_scale!r}.")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be positive or None, got {grad_clip!r}.")

    def scale(v):
        if loss_scale == "linear":
            return v
        return jnp.sqrt(jnp.maximum(v, 0.0) + 1e-8)

    two_d = setup.ndim == 2
    if two_d and residual_weight > 0:
        raise ValueError("2-D metamodels are trained on solver data only (residual_weight=0).")
    if two_d and data_weight > 0 and y_grid is None:
        raise ValueError("a 2-D metamodel needs y_grid (see default_grid).")
    key = jax.random.key(seed)
    sched = optax.cosine_decay_schedule(lr, max(int(steps), 1), alpha=1e-2)
    opt = optax.adam(sched)
    if grad_clip is not None:
        opt = optax.chain(optax.clip_by_global_norm(float(grad_clip)), opt)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = opt.init(params)
    p = len(setup.names)
    if data_weight > 0:
        th_all = jnp.asarray(theta_train, jnp.float32)
        u_all = jnp.asarray(u_train, jnp.float32)
        tg = jnp.asarray(t_grid, jnp.float64)
        xg = jnp.asarray(x_grid, jnp.float64)
        if two_d:
            yg = jnp.asarray(y_grid, jnp.float64)
            n_th, n_t, n_y, n_x = u_all.shape
        else:
            n_th, n_t, n_x = u_all.shape
    lo = jnp.asarray(setup.lower)
    hi = jnp.asarray(setup.upper)

    def loss_fn(params, key):
        m = eqx.combine(params, static)
        k1, k2, k3, k4 = jax.random.split(key, 4)
        total = 0.0
        if data_weight > 0:
            idx = jax.random.randint(k1, (batch_theta,), 0, n_th)
            ti = jax.random.randint(k2, (batch_theta, batch_points), 0, n_t)
            xi = jax.random.randint(jax.random.fold_in(k2, 1), (batch_theta, batch_points), 0,
                                    n_x)

            if two_d:
                yi = jax.random.randint(jax.random.fold_in(k2, 2), (batch_theta, batch_points),
                                        0, n_y)

                def one2(i, a, c, b):
                    pred = m.evaluate(th_all[i].astype(jnp.float64), tg[a], xg[b], yg[c])
                    return (scale(pred.astype(jnp.float32)) - scale(u_all[i, a, c, b])) ** 2

                total = total + data_weight * jnp.mean(jax.vmap(one2)(idx, ti, yi, xi))
            else:
                def one(i, a, b):
                    pred = m.evaluate(th_all[i].astype(jnp.float64), tg[a], xg[b])
                    return (scale(pred.astype(jnp.float32)) - scale(u_all[i, a, b])) ** 2

                total = total + data_weight * jnp.mean(jax.vmap(one)(idx, ti, xi))
        if residual_weight > 0:
            u01 = jax.random.uniform(k3, (batch_theta, p))
            # uniform on the normalised scale (log for D, gamma), as sample_box
            cols = []
            for j, n in enumerate(setup.names):
                if n in ("D", "gamma"):
                    cols.append(jnp.exp(jnp.log(lo[j]) + u01[:, j] * jnp.log(hi[j] / lo[j])))
                else:
                    cols.append(lo[j] + u01[:, j] * (hi[j] - lo[j]))
            th = jnp.stack(cols, -1).astype(jnp.float32)
            pts = jax.random.uniform(k4, (batch_theta, 2, batch_points), dtype=jnp.float32)
            pts = pts.at[:, 0].set(pts[:, 0] ** time_power)
            res = jax.vmap(lambda th1, pp: _residual(m, th1, pp[0], pp[1]))(th, pts)
            total = total + residual_weight * jnp.mean(res**2)
        return total

    @eqx.filter_jit
    def chunk(params, opt_state, key):
        def body(carry, k):
            params, opt_state = carry
            loss, g = jax.value_and_grad(loss_fn)(params, k)
            upd, opt_state = opt.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), (loss, optax.tree.norm(g))

        (params, opt_state), (losses, norms) = jax.lax.scan(
            body, (params, opt_state), jax.random.split(key, steps_per_call))
        return params, opt_state, losses.mean(), jnp.median(norms), norms.max()

    record = {"loss": [], "grad_norm_median": [], "grad_norm_max": [], "steps": 0,
              "train_s": 0.0, "compile_s": 0.0}
    t_start = _time.perf_counter()
    n_chunks = max(1, int(steps) // int(steps_per_call))
    for c in range(n_chunks):
        key, k = jax.random.split(key)
        t0 = _time.perf_counter()
        params, opt_state, loss, g_med, g_max = chunk(params, opt_state, k)
        loss = float(loss)
        if c == 0:
            record["compile_s"] = _time.perf_counter() - t0
        record["loss"].append(loss)
        record["grad_norm_median"].append(float(g_med))
        record["grad_norm_max"].append(float(g_max))
        record["steps"] += int(steps_per_call)
        if verbose:
            print(f"  step {record['steps']:6d}  loss {loss:.3e}  |grad| median "
                  f"{float(g_med):.2e} max {float(g_max):.2e}  "
                  f"{_time.perf_counter() - t_start:6.1f} s", flush=True)
        if time_budget is not None and _time.perf_counter() - t_start > time_budget:
            break
    record["train_s"] = _time.perf_counter() - t_start
    return eqx.combine(params, static), record


def relative_errors(model: HyperPINN, theta, u_ref, t, x, y=None) -> np.ndarray:
    """Relative L2 error ``||u_meta - u_ref|| / ||u_ref||`` of the (time x site) field at each
    theta ``(n, p)``; `u_ref` ``(n, n_t, n_x)`` on `t` x `x` (e.g. :func:`solver_snapshots`);
    2-D: ``(n, n_t, n_y, n_x)`` on `t` x `y` x `x`."""
    pred = model.predict(np.asarray(theta), t, x, y)
    axes = tuple(range(1, np.ndim(u_ref)))
    num = np.sqrt(np.sum((pred - u_ref) ** 2, axis=axes))
    den = np.sqrt(np.sum(np.asarray(u_ref, float) ** 2, axis=axes))
    return num / den
