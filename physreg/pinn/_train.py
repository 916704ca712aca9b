"""Training: Adam (warm-up, then decay) and L-BFGS over network weights and theta jointly.

Written as pure functions over a :class:`TrainState` pytree (blackjax style):

    state = init_state(problem, weights, theta0, data, schedule)
    state, info = run_adam(problem, state, data, schedule)      # one lax.scan, compiled once
    state, info = run_lbfgs(problem, state, data, schedule)

``problem`` (architecture, physics, likelihood) is shared; ``state`` and ``data`` are pytrees of
arrays, so ``jax.vmap(run_adam, in_axes=(None, 0, 0, None))`` trains a batch of replicates
(restarts, bootstrap resamples, profile points) with the same compiled code. The compiled
programs are cached per (problem structure, schedule): refitting on new data of the same shapes
does not recompile (``jinns.solve`` recompiles at every call).

A step whose loss or gradient is not finite is rejected (variables and optimiser state kept) and
counted in ``state.n_bad``; a state with non-finite variables or more than ``max_bad`` rejected
steps is flagged ``diverged``.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._problem import PINNData, PINNProblem, Variables

__all__ = ["Schedule", "TrainState", "TrainInfo", "init_state", "run_adam", "run_lbfgs",
           "compile_ahead"]


@dataclass(frozen=True)
class Schedule:
    """Training schedule (hashable: part of the cache key of compiled programs).

    Attributes
    ----------
    n_adam : Adam steps (after ``n_warmup`` linear warm-up steps, included).
    lr : peak learning rate of the network weights; ``lr_theta`` that of theta (log scale).
    final_lr_ratio : the learning rate decays exponentially to ``lr * final_lr_ratio``.
    n_lbfgs : L-BFGS iterations (zoom line search), ``memory`` its history size.
    chunk : steps per compiled ``lax.scan`` (history and divergence checks between chunks).
    ramp_from, ramp_steps : continuation in the penalty weights. The PDE, IC and BC weights start
        at ``ramp_from`` times their values (``data.lambdas``) and grow geometrically to them over
        the first ``ramp_steps`` Adam steps. Early on, the network follows the data (a smoother
        of the observations) and theta follows the network; physics then takes over. Without
        it, a strong penalty from step 0 lets theta collapse toward the trivial solution
        (u constant in time: r, D -> 0) before the network has learnt anything.
    resample, time_power : draw fresh uniform collocation points at every Adam step (times
        ``s ** time_power``) and for every ``chunk`` of L-BFGS iterations after the first (the
        L-BFGS memory restarts with each new set: within a chunk the objective is fixed);
        otherwise the fixed points of ``data.colloc`` are used throughout. A network with about
        as many weights as collocation points (2-D: 3 inputs) can satisfy the PDE at the points
        only; fresh points keep it honest (``PINNEstimator.residual_rms_heldout_`` measures it).
    """

    n_adam: int = 2000
    n_warmup: int = 200
    lr: float = 3e-3
    lr_theta: float = 1e-2
    final_lr_ratio: float = 0.02
    n_lbfgs: int = 3000
    memory: int = 20
    chunk: int = 500
    max_bad: int = 50
    ramp_from: float = 1e-2
    ramp_steps: int = 1000
    resample: bool = False
    time_power: float = 2.0
    time_margin: float = 0.1

    def lambda_factor(self, step):
        """Multiplier of the penalty weights at Adam step ``step``."""
        if self.ramp_steps <= 0 or self.ramp_from >= 1:
            return jnp.ones(())
        frac = jnp.clip(step / self.ramp_steps, 0.0, 1.0)
        return jnp.asarray(self.ramp_from) ** (1.0 - frac)

    def adam(self) -> optax.GradientTransformation:
        def sched(peak):
            return optax.warmup_exponential_decay_schedule(
                init_value=0.0, peak_value=peak, warmup_steps=self.n_warmup,
                transition_steps=max(self.n_adam - self.n_warmup, 1),
                decay_rate=self.final_lr_ratio, end_value=peak * self.final_lr_ratio)

        return optax.multi_transform(
            {"nn": optax.adam(sched(self.lr)), "theta": optax.adam(sched(self.lr_theta))},
            _labels)

    def lbfgs(self) -> optax.GradientTransformationExtraArgs:
        return optax.lbfgs(memory_size=self.memory, linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=30, initial_guess_strategy="one"))


def _labels(variables: Variables):
    return Variables(nn=jax.tree.map(lambda _: "nn", variables.nn), theta="theta")


class TrainState(eqx.Module):
    """Everything that evolves during training (a pytree of arrays: vmap it)."""

    variables: Variables
    adam_state: object
    lbfgs_state: object
    loss: jax.Array          # loss at ``variables`` (last accepted step)
    step: jax.Array          # Adam steps taken (drives the penalty ramp)
    key: jax.Array           # PRNG key of collocation resampling
    n_bad: jax.Array         # rejected (non-finite) steps
    diverged: jax.Array      # bool


class TrainInfo(NamedTuple):
    """Per-step history: ``loss`` (steps,), ``terms`` (steps, 4) = data, pde, ic, bc
    (NaN in L-BFGS steps, where only the total is evaluated), ``theta`` (steps, p) the
    unconstrained parameters at which the loss was evaluated."""

    loss: jax.Array
    terms: jax.Array
    theta: jax.Array


def init_state(problem: PINNProblem, weights, theta0, data: PINNData,
               schedule: Schedule, key=None) -> TrainState:
    """A fresh state from network ``weights`` and unconstrained ``theta0`` (profile mask applied)."""
    theta0 = jnp.where(data.theta_mask, data.theta_fixed, jnp.asarray(theta0, float))
    v = Variables(nn=weights, theta=theta0)
    return _strong(TrainState(variables=v, adam_state=schedule.adam().init(v),
                              lbfgs_state=_lbfgs_init(schedule, v),
                              loss=jnp.asarray(jnp.inf), step=jnp.zeros((), jnp.int32),
                              key=jax.random.PRNGKey(0) if key is None else key,
                              n_bad=jnp.zeros((), jnp.int32), diverged=jnp.zeros((), bool)))


def _strong(tree):
    """``tree`` with every weakly typed array made strongly typed. A compiled chunk returns
    strong types; a state that enters with weak ones (fresh optimiser states, a Python-scalar
    loss) would have the next chunk compiled a second time (twice 15-30 s for a 1-D fit)."""
    return jax.tree.map(lambda a: jnp.asarray(a, dtype=a.dtype)
                        if isinstance(a, jax.Array) and a.weak_type else a, tree)


def _lbfgs_init(schedule: Schedule, variables: Variables):
    return _strong(schedule.lbfgs().init(_upcast(variables)))


def _finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if eqx.is_inexact_array(x)]
    return jnp.all(jnp.stack(leaves))


def _upcast(tree):
    """float64 copy of the inexact leaves (L-BFGS runs on a float64 master copy: its line
    search cannot mix float32 network weights with float64 parameters)."""
    return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, tree)


def _like(tree, ref):
    """``tree`` with the dtypes of ``ref`` (the network computes in its weights' dtype)."""
    return jax.tree.map(lambda a, b: a.astype(b.dtype) if eqx.is_inexact_array(b) else a,
                        tree, ref)


def _select(ok, new, old):
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def adam_step(problem: PINNProblem, state: TrainState, data: PINNData, schedule: Schedule):
    """One Adam step (rejected if the loss or the gradient is not finite)."""
    opt = schedule.adam()
    lam = data.lambdas * schedule.lambda_factor(state.step)
    ramped = eqx.tree_at(lambda d: d.lambdas, data, lam)
    if schedule.resample:
        ramped = fresh_collocation(ramped, jax.random.fold_in(state.key, state.step), schedule)
    (loss, terms), grads = eqx.filter_value_and_grad(problem.loss_terms, has_aux=True)(
        state.variables, ramped)
    updates, opt_state = opt.update(grads, state.adam_state, state.variables)
    variables = eqx.apply_updates(state.variables, updates)
    ok = jnp.isfinite(loss) & _finite(grads)
    new = TrainState(variables=_select(ok, variables, state.variables),
                     adam_state=_select(ok, opt_state, state.adam_state),
                     lbfgs_state=state.lbfgs_state, loss=jnp.where(ok, loss, state.loss),
                     step=state.step + 1, key=state.key,
                     n_bad=state.n_bad + (~ok).astype(jnp.int32),
                     diverged=state.diverged | (state.n_bad >= schedule.max_bad))
    return new, TrainInfo(loss, terms, problem.theta(state.variables, data))


def lbfgs_step(problem: PINNProblem, state: TrainState, data: PINNData, schedule: Schedule):
    """One L-BFGS iteration with a zoom line search (rejected if not finite)."""
    opt = schedule.lbfgs()
    ref = state.variables
    fn = lambda v: problem.loss(_like(v, ref), data)
    master = _upcast(ref)
    value, grads = optax.value_and_grad_from_state(fn)(master, state=state.lbfgs_state)
    updates, opt_state = opt.update(grads, state.lbfgs_state, master, value=value,
                                    grad=grads, value_fn=fn)
    variables = _like(eqx.apply_updates(master, updates), ref)
    ok = jnp.isfinite(value) & _finite(grads) & _finite(variables)
    new = TrainState(variables=_select(ok, variables, state.variables),
                     adam_state=state.adam_state,
                     lbfgs_state=_select(ok, opt_state, state.lbfgs_state),
                     loss=jnp.where(ok, value, state.loss), step=state.step, key=state.key,
                     n_bad=state.n_bad + (~ok).astype(jnp.int32),
                     diverged=state.diverged | (state.n_bad >= schedule.max_bad))
    return new, TrainInfo(value, jnp.full((4,), jnp.nan, value.dtype),
                          problem.theta(state.variables, data))


def _scan(step, n):
    def run(problem, state, data, schedule):
        def body(s, _):
            return step(problem, s, data, schedule)

        return jax.lax.scan(body, state, None, length=n)

    return run


_COMPILED: dict = {}


def _compiled(kind: str, n: int, batched: bool):
    """jit (and vmap) of ``n`` steps of ``kind``, cached so every call reuses one program."""
    key = (kind, n, batched)
    if key not in _COMPILED:
        fn = _scan(adam_step if kind == "adam" else lbfgs_step, n)
        if batched:
            fn = jax.vmap(fn, in_axes=(None, 0, 0, None))
        _COMPILED[key] = eqx.filter_jit(fn)
    return _COMPILED[key]


_AHEAD = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="physreg-xla")


def compile_ahead(jobs) -> concurrent.futures.Future:
    """Compile programs in a background thread, without running them.

    ``jobs``: ``(fn, args)`` pairs, ``fn`` an ``eqx.filter_jit`` function (``("adam" |
    "lbfgs", n)`` for the training chunk of ``n`` steps) and ``args`` arguments of the shapes and
    types it will be called with. ``fn.lower(*args).compile()`` fills the cache the later call
    reads, so that call runs without compiling. XLA compiles outside Python's lock, so the
    L-BFGS program compiles while Adam trains (``fit_pinn``; on 2 cores the overlap is partial:
    XLA itself compiles on about 1.6 cores). A job that fails is
    skipped (the call then compiles as usual). Returns a future: wait on it before the calls.
    """
    def work():
        for fn, args in jobs:
            try:
                fn = _compiled(*fn, False) if isinstance(fn, tuple) else fn
                fn.lower(*args).compile()
            except Exception:     # noqa: BLE001 - the later call compiles and reports errors
                pass

    return _AHEAD.submit(work)


def uniform_collocation(key, n: int, dim: int, schedule: Schedule, dtype=jnp.float64):
    """``n`` uniform points of the unit box ``(t', x'[, y'])`` with times ``(1 + time_margin)
    s ** time_power`` (denser early, as the fixed Sobol points)."""
    pts = jax.random.uniform(key, (n, dim), dtype)
    return pts.at[:, 0].set((1.0 + schedule.time_margin) * pts[:, 0] ** schedule.time_power)


def fresh_collocation(data: PINNData, key, schedule: Schedule) -> PINNData:
    """``data`` with as many new collocation points (:func:`uniform_collocation`)."""
    n, dim = data.colloc.shape
    pts = uniform_collocation(key, n, dim, schedule, data.colloc.dtype)
    return eqx.tree_at(lambda d: d.colloc, data, pts)


def _run(kind, total, problem, state, data, schedule, batched, callback=None):
    chunks = []
    done = 0
    while done < total:
        n = min(schedule.chunk, total - done)
        if kind == "lbfgs" and schedule.resample and done > 0 and not batched:
            data = fresh_collocation(data, jax.random.fold_in(state.key, 10**6 + done), schedule)
            state = eqx.tree_at(lambda s: s.lbfgs_state, state,
                                _lbfgs_init(schedule, state.variables))
        state, info = _compiled(kind, n, batched)(problem, state, data, schedule)
        chunks.append(info)
        done += n
        if callback is not None:
            callback(done, state)
        if not batched and bool(state.diverged):
            break
    if not chunks:
        empty = jnp.zeros(state.loss.shape + (0,))
        p = state.variables.theta.shape[-1]
        return state, TrainInfo(empty, jnp.zeros(state.loss.shape + (0, 4)),
                                jnp.zeros(state.loss.shape + (0, p)))
    axis = 1 if batched else 0
    info = TrainInfo(*(jnp.concatenate([getattr(c, f) for c in chunks], axis) for f in
                       TrainInfo._fields))
    return state, info


def run_adam(problem, state, data, schedule: Schedule, *, batched=False, callback=None):
    """``schedule.n_adam`` Adam steps. ``batched``: ``state`` and ``data`` carry a leading
    replicate axis (one vmapped program trains them all). Returns (state, TrainInfo)."""
    return _run("adam", schedule.n_adam, problem, state, data, schedule, batched, callback)


def run_lbfgs(problem, state, data, schedule: Schedule, *, batched=False, callback=None,
              n: int | None = None):
    """``schedule.n_lbfgs`` (or ``n``) L-BFGS iterations; see :func:`run_adam`."""
    total = schedule.n_lbfgs if n is None else n
    return _run("lbfgs", total, problem, state, data, schedule, batched, callback)


def stack_trees(trees):
    """Stack a list of pytrees along a new leading axis (replicates)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack_tree(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def history_array(info: TrainInfo) -> np.ndarray:
    """(steps, 5) array: total, data, pde, ic, bc."""
    return np.concatenate([np.asarray(info.loss)[..., None], np.asarray(info.terms)], -1)
