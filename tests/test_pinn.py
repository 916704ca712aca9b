"""Physics-regularised PINN: residual on exact and manufactured solutions, Taylor-mode derivatives
against jinns' operators, exact boundary/initial constructions, vmapped training equal to separate
runs, divergence detection, profile masks, and a short 1-D recovery (the accurate one is slow)."""

import math

import jax
import jax.numpy as jnp
import jinns
import numpy as np
import pytest
import xarray as xr

from physreg.data import validate_covariates, validate_observations
from physreg.likelihoods import Gaussian
from physreg.model import (
    Domain,
    FirstObservation,
    GaussianIntroductions,
    Link,
    ParameterSpace,
    ReactionDiffusion,
)
from physreg.pinn import (
    Schedule,
    Variables,
    build_problem,
    fit_pinn,
    init_state,
    run_adam,
    run_lbfgs,
    with_fixed,
    with_observations,
)
from physreg.pinn._physics import network_derivatives, scalar_network, taylor_streams
from physreg.pinn._problem import ModelParams, default_u_scale, round_scale
from physreg.pinn._train import _compiled, compile_ahead, stack_trees, unstack_tree
from physreg.solvers import FiniteVolumeSolver

TRUTH = dict(D=0.1, r=1.0, gamma=1.0, ic_x=2.0, ic_width=0.5, ic_mass=1.0)
TIMES = np.arange(1.0, 9.0)
SITES = np.linspace(0.0, 10.0, 25)
FIXED_IC = dict(ic_x=2.0, ic_width=0.5, ic_mass=1.0)


def make_1d(seed=0, sigma=0.05):
    """The 1-D case: D=0.1, r=1, gamma=1 on [0, 10], Gaussian introduction at x=2, 8 x 25, 5%."""
    model = ReactionDiffusion(Domain((0.0, 10.0)), initial=GaussianIntroductions())
    s = FiniteVolumeSolver(model, shape=400)
    u = np.asarray(s.solve(TRUTH, TIMES, t0=0.0))
    mu = np.array([np.interp(SITES, s.centres[0], ui) for ui in u])
    y = np.asarray(Gaussian(sigma=sigma).sample(jax.random.PRNGKey(seed), jnp.asarray(mu), {}, {}))
    ds = xr.Dataset({"density": (("time", "x"), y)}, coords={"time": TIMES, "x": SITES})
    return model, validate_observations(ds, domain={"x": (0.0, 10.0)}), mu


def space_of(model, lik, fixed=None, T=8.0):
    names = model.param_names() + lik.nuisance_names()
    tr = {**model.transforms(), **lik.nuisance_transforms()}
    b = {**model.default_bounds({"time": T, "u": 1.0}), **lik.nuisance_bounds()}
    return ParameterSpace.build(names, tr, b, fixed)


def params_of(**kw):
    return jinns.parameters.Params(nn_params=None, eq_params=ModelParams(
        {k: jnp.asarray(float(v)) for k, v in kw.items()}))


@pytest.fixture(scope="module")
def case1():
    return make_1d()


@pytest.fixture(scope="module")
def tiny(case1):
    """A small problem (few points, tiny network) for the mechanics tests."""
    model, obs, _ = case1
    lik = Gaussian()
    space = space_of(model, lik, FIXED_IC)
    prob, data, w = build_problem(model, obs, lik, space, key=jax.random.PRNGKey(0), width=8,
                                  depth=2, modes=3, n_collocation=64, n_initial=32,
                                  n_boundary=16, lambda_pde=10.0, lambda_ic=10.0)
    return prob, data, w, space


# ------------------------------------------------------------------------------------------------
# Residual
# ------------------------------------------------------------------------------------------------
def test_residual_vanishes_on_exact_travelling_wave(tiny):
    """u = (1 + exp(sqrt(r/6D) (x - x0) - 5 r t / 6))^-2 solves u_t = D u_xx + r u (1 - u)."""
    prob, data, _, _ = tiny
    sc = prob.scales
    D, r = 0.1, 1.0

    def exact(inputs, params):
        t = sc.t0 + sc.T * inputs[0]
        x = sc.lower[0] + sc.length[0] * inputs[1]
        u = (1.0 + jnp.exp(math.sqrt(r / (6 * D)) * (x - 3.0) - 5 * r * t / 6)) ** -2
        return (u / sc.u)[None]

    pts = jnp.asarray(np.random.default_rng(0).uniform(size=(200, 2)))
    R = jax.vmap(prob.pde.evaluate, (0, None, None))(pts, exact, params_of(D=D, r=r, gamma=1.0))
    assert float(jnp.max(jnp.abs(R))) < 1e-12
    # a wrong D leaves a residual of the size of the diffusion term
    R2 = jax.vmap(prob.pde.evaluate, (0, None, None))(pts, exact, params_of(D=2 * D, r=r,
                                                                             gamma=1.0))
    assert float(jnp.max(jnp.abs(R2))) > 0.05


def _analytic(t, x):
    """A smooth test function with its derivatives (user units)."""
    u = 0.5 * jnp.exp(-0.3 * t) * (1.2 + jnp.cos(0.7 * x))
    u_t = -0.3 * u
    u_x = -0.5 * 0.7 * jnp.exp(-0.3 * t) * jnp.sin(0.7 * x)
    u_xx = -0.5 * 0.49 * jnp.exp(-0.3 * t) * jnp.cos(0.7 * x)
    return u, u_t, u_x, u_xx


def test_residual_heterogeneous_D_and_r_manufactured():
    """div(D(x) grad u) with log D = log D0 + a z(x), r = r0 + b w(x): covariates on a grid."""
    L, T = 10.0, 4.0
    model = ReactionDiffusion(Domain((0.0, L)), D=Link("log", ("z",)), r=Link("identity", ("w",)),
                              initial=FirstObservation())
    xg = np.linspace(0.0, L, 2001)
    cov = validate_covariates(xr.Dataset({"z": ("x", xg / L), "w": ("x", np.sin(xg))},
                                         coords={"x": xg}), ndim=1, domain={"x": (0.0, L)})
    ds = xr.Dataset({"density": (("time", "x"), np.ones((2, 5)))},
                    coords={"time": [0.0, T], "x": np.linspace(0, L, 5)})
    obs = validate_observations(ds)
    lik = Gaussian(sigma=0.1)
    space = space_of(model, lik, T=T)
    prob, data, w = build_problem(model, obs, lik, space, cov, key=jax.random.PRNGKey(1),
                                  n_collocation=64, u_scale=2.0)
    sc = prob.scales
    D0, a, r0, b, g = 0.2, 0.8, 0.5, 0.3, 0.7

    def manufactured(inputs, params):
        t = sc.t0 + sc.T * inputs[0]
        x = sc.lower[0] + sc.length[0] * inputs[1]
        return (_analytic(t, x)[0] / sc.u)[None]

    pts = jnp.asarray(np.random.default_rng(1).uniform(0.02, 0.98, size=(100, 2)))
    R = jax.vmap(prob.pde.evaluate, (0, None, None))(
        pts, manufactured, params_of(D=D0, D_z=a, r=r0, r_w=b, gamma=g))
    t = sc.t0 + sc.T * pts[:, 0]
    x = sc.lower[0] + sc.length[0] * pts[:, 1]
    u, u_t, u_x, u_xx = _analytic(t, x)
    Dx = D0 * jnp.exp(a * x / L)
    div = Dx * u_xx + Dx * (a / L) * u_x
    expected = (u_t - div - u * (r0 + b * jnp.sin(x) - g * u)) * sc.T / sc.u
    # linear interpolation of sin on a 0.005 grid: error ~ h^2 / 8 ~ 3e-6
    np.testing.assert_allclose(np.asarray(R[:, 0]), np.asarray(expected), atol=2e-5)


def test_residual_2d_anisotropic_manufactured():
    Lx, Ly, T = 10.0, 4.0, 2.0
    model = ReactionDiffusion(Domain((0.0, Lx), (0.0, Ly)), initial=FirstObservation())
    xs, ys = np.linspace(0, Lx, 4), np.linspace(0, Ly, 3)
    ds = xr.Dataset({"density": (("time", "y", "x"), np.ones((2, 3, 4)))},
                    coords={"time": [0.0, T], "y": ys, "x": xs})
    obs = validate_observations(ds)
    lik = Gaussian(sigma=0.1)
    prob, _, _ = build_problem(model, obs, lik, space_of(model, lik, T=T),
                               key=jax.random.PRNGKey(2), n_collocation=64, u_scale=1.5)
    sc = prob.scales

    def f(t, x, y):
        return jnp.exp(-0.2 * t) * (1.5 + jnp.cos(0.6 * x) * jnp.sin(1.1 * y))

    def manufactured(inputs, params):
        t = sc.t0 + sc.T * inputs[0]
        x = sc.lower[0] + sc.length[0] * inputs[1]
        y = sc.lower[1] + sc.length[1] * inputs[2]
        return (f(t, x, y) / sc.u)[None]

    D, r, g = 0.3, 0.8, 0.4
    pts = jnp.asarray(np.random.default_rng(2).uniform(size=(50, 3)))
    R = jax.vmap(prob.pde.evaluate, (0, None, None))(pts, manufactured, params_of(D=D, r=r,
                                                                                  gamma=g))
    t, x, y = (sc.t0 + sc.T * pts[:, 0], sc.length[0] * pts[:, 1], sc.length[1] * pts[:, 2])
    u = f(t, x, y)
    osc = jnp.cos(0.6 * x) * jnp.sin(1.1 * y) * jnp.exp(-0.2 * t)
    u_t = -0.2 * u
    lap = -(0.36 + 1.21) * osc
    expected = (u_t - D * lap - u * (r - g * u)) * sc.T / sc.u
    np.testing.assert_allclose(np.asarray(R[:, 0]), np.asarray(expected), atol=1e-12)


def test_taylor_mode_matches_pointwise_and_jinns_laplacian(tiny):
    prob, data, w, space = tiny
    v = Variables(nn=w, theta=space.pack(dict(D=0.05, r=0.5, gamma=0.5, sigma=0.1)))
    params = prob.jinns_params(v, v.theta)
    pts = data.colloc
    batched = prob.pde.residuals(pts, prob.network, params)
    pointwise = jax.vmap(prob.pde.evaluate, (0, None, None))(pts, prob.network, params)[:, 0]
    np.testing.assert_allclose(np.asarray(batched), np.asarray(pointwise), atol=1e-12)
    u, u_t, g, second = taylor_streams(prob.network, params, pts, 1)
    lap = jax.vmap(lambda p: jinns.loss.laplacian_rev(p, prob.network, params,
                                                      eq_type="PDENonStatio"))(pts)
    np.testing.assert_allclose(np.asarray(second[:, 0]), np.asarray(lap), rtol=1e-10, atol=1e-12)
    f = scalar_network(prob.network, params)
    u2, ut2, _, _ = jax.vmap(lambda p: network_derivatives(f, p, 1))(pts)
    np.testing.assert_allclose(np.asarray(u_t), np.asarray(ut2), atol=1e-12)


def test_cosine_features_give_exact_no_flux_and_hard_ic_is_exact(case1):
    model, obs, _ = case1
    lik = Gaussian()
    space = space_of(model, lik)
    z = space.pack({**TRUTH, "sigma": 0.05})
    prob, data, w = build_problem(model, obs, lik, space, key=jax.random.PRNGKey(3), width=8,
                                  depth=2, n_collocation=64, hard_ic=False)
    assert prob.bc_kind == "hard" and prob.ic_kind == "gaussian"
    f = scalar_network(prob.network, prob.jinns_params(Variables(nn=w, theta=z), z))
    for t in (0.1, 0.5, 0.9):
        for x in (0.0, 1.0):
            dudx = jax.grad(f)(jnp.array([t, x]))[1]
            assert abs(float(dudx)) < 1e-12
    # hard IC: u_hat(0, x') = u0 / u_scale + eps for any weights (the Gaussian's own tail then
    # carries a tiny flux through the boundary)
    prob, data, w = build_problem(model, obs, lik, space, key=jax.random.PRNGKey(3), width=8,
                                  depth=2, n_collocation=64, hard_ic=True)
    assert prob.ic_kind == "hard"
    f = scalar_network(prob.network, prob.jinns_params(Variables(nn=w, theta=z), z))
    xs = jnp.linspace(0, 1, 50)
    u0 = jax.vmap(lambda x: f(jnp.array([0.0, x])))(xs)
    expected = model.initial.evaluate(TRUTH, (10 * xs,)) / prob.scales.u + prob.network.eps
    np.testing.assert_allclose(np.asarray(u0), np.asarray(expected), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Training mechanics
# ------------------------------------------------------------------------------------------------
def test_vmap_over_replicates_equals_separate_runs(tiny, case1):
    prob, data, w, space = tiny
    _, _, mu = case1
    sch = Schedule(n_adam=30, n_warmup=5, ramp_steps=20, n_lbfgs=5, chunk=30, resample=True)
    z0 = space.pack(dict(D=0.05, r=0.5, gamma=0.5, sigma=0.1))
    mu_obs = jnp.asarray(mu.ravel())
    datas = [with_observations(data, y=Gaussian(sigma=0.05).sample(jax.random.PRNGKey(10 + i),
                                                                   mu_obs, {}, {}))
             for i in range(3)]
    datas[2] = with_observations(datas[2], weights=jnp.asarray(
        np.random.default_rng(0).poisson(1.0, mu_obs.size), float))
    states = [init_state(prob, w, z0, d, sch, key=jax.random.PRNGKey(i))
              for i, d in enumerate(datas)]
    bstate, binfo = run_adam(prob, stack_trees(states), stack_trees(datas), sch, batched=True)
    bstate, binfo2 = run_lbfgs(prob, bstate, stack_trees(datas), sch, batched=True)
    for i in range(3):
        s, info = run_adam(prob, states[i], datas[i], sch)
        s, info2 = run_lbfgs(prob, s, datas[i], sch)
        np.testing.assert_allclose(np.asarray(binfo.loss[i]), np.asarray(info.loss), rtol=1e-9)
        np.testing.assert_allclose(np.asarray(binfo2.loss[i]), np.asarray(info2.loss), rtol=1e-7)
        np.testing.assert_allclose(np.asarray(unstack_tree(bstate, i).variables.theta),
                                   np.asarray(s.variables.theta), rtol=1e-7, atol=1e-10)
    # the replicates differ from each other
    assert float(jnp.std(bstate.variables.theta[:, 0])) > 0


def test_chunks_reuse_one_compiled_program(tiny):
    """A fresh state and the state a compiled chunk returns have the same types (no weakly
    typed leaves), so every chunk after the first reuses the first chunk's program; a
    weakly typed fresh state used to compile the second chunk again (15-30 s per phase)."""
    prob, data, w, space = tiny
    sch = Schedule(n_adam=15, n_warmup=2, ramp_steps=5, n_lbfgs=10, chunk=5)

    def signature(tree):
        return [(x.dtype, x.shape, x.weak_type) for x in jax.tree.leaves(tree)
                if isinstance(x, jax.Array)]

    def programs():
        return {k: _compiled(k, 5, False)._cached._cache_size() for k in ("adam", "lbfgs")}

    before = programs()
    s0 = init_state(prob, w, space.pack(dict(D=0.05, r=0.5, gamma=0.5, sigma=0.1)), data, sch)
    assert not any(weak for *_, weak in signature(s0))
    s, _ = run_adam(prob, s0, data, sch)
    assert signature(s) == signature(s0)
    s, _ = run_lbfgs(prob, s, data, sch)
    assert signature(s) == signature(s0)
    after = programs()
    assert all(after[k] - before[k] <= 1 for k in after)    # 3 and 2 chunks, one program each


def test_compile_ahead_leaves_nothing_to_compile(tiny, caplog):
    """``compile_ahead`` (background thread) compiles the L-BFGS chunk a fit runs after Adam:
    the run then compiles nothing. JAX logs each XLA compilation with the function's name."""
    prob, data, w, space = tiny
    sch = Schedule(n_adam=0, n_lbfgs=7, chunk=7, ramp_steps=0)    # a program no test ran
    s0 = init_state(prob, w, space.pack(dict(D=0.05, r=0.5, gamma=0.5, sigma=0.1)), data, sch)

    def compiled_runs():
        return [r.getMessage() for r in caplog.records
                if "XLA compilation of jit(run)" in r.getMessage()]

    jax.config.update("jax_log_compiles", True)     # global: the compile runs in a thread
    try:
        with caplog.at_level("WARNING"):
            compile_ahead([(("lbfgs", 7), (prob, s0, data, sch))]).result()
            assert len(compiled_runs()) == 1              # the detector sees the compilation
            caplog.clear()
            s, info = run_lbfgs(prob, s0, data, sch)
            assert compiled_runs() == []
    finally:
        jax.config.update("jax_log_compiles", False)
    assert info.loss.shape == (7,) and np.isfinite(float(s.loss))


def test_compile_ahead_skips_a_failing_job():
    """A job that cannot be lowered is skipped: the fit then compiles at the call as usual."""
    assert compile_ahead([(("lbfgs", 3), (None, None, None, None))]).result() is None


def test_density_scale_is_a_power_of_two():
    assert round_scale(1.0106) == 1.0
    assert round_scale(3.1) == 4.0
    assert round_scale(0.3) == 0.25
    assert default_u_scale(np.array([0.0, 1.02, 0.98]), Gaussian()) == 1.0
    with pytest.raises(ValueError, match="positive"):
        round_scale(0.0)


def test_profile_mask_holds_the_parameter(tiny):
    prob, data, w, space = tiny
    sch = Schedule(n_adam=20, n_warmup=5, ramp_steps=10, n_lbfgs=0, chunk=20)
    d = with_fixed(data, space, {"D": 0.2})
    s = init_state(prob, w, space.pack(dict(D=0.05, r=0.5, gamma=0.5, sigma=0.1)), d, sch)
    s, info = run_adam(prob, s, d, sch)
    th = space.unpack(prob.theta(s.variables, d))
    assert float(th["D"]) == pytest.approx(0.2, rel=1e-12)
    assert float(th["r"]) != pytest.approx(0.5, rel=1e-6)
    with pytest.raises(ValueError, match="not free parameters"):
        with_fixed(data, space, {"ic_x": 1.0})


def test_divergence_is_detected_and_steps_rejected(tiny):
    prob, data, w, space = tiny
    sch = Schedule(n_adam=12, n_warmup=2, n_lbfgs=0, chunk=12, max_bad=5)
    bad = with_observations(data, y=data.y.at[0].set(jnp.nan))
    s0 = init_state(prob, w, space.pack(dict(D=0.05, r=0.5, gamma=0.5, sigma=0.1)), bad, sch)
    s, info = run_adam(prob, s0, bad, sch)
    assert bool(s.diverged) and int(s.n_bad) >= 5
    # rejected steps leave the variables untouched (and finite)
    np.testing.assert_array_equal(np.asarray(s.variables.theta), np.asarray(s0.variables.theta))


def test_build_errors(case1):
    model, obs, _ = case1
    lik = Gaussian()
    m2 = ReactionDiffusion(Domain((0.0, 10.0)), initial=GaussianIntroductions(fit_t0=True))
    with pytest.raises(NotImplementedError, match="fit_t0"):
        build_problem(m2, obs, lik, space_of(m2, lik), key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="initial must be"):
        build_problem(model, obs, lik, space_of(model, lik), key=jax.random.PRNGKey(0),
                      initial="guess")
    m3 = ReactionDiffusion(Domain((0.0, 10.0)), r=Link("identity", ("elev",)),
                           initial=GaussianIntroductions())
    with pytest.raises(ValueError, match="covariates"):
        build_problem(m3, obs, lik, space_of(m3, lik), key=jax.random.PRNGKey(0))


# ------------------------------------------------------------------------------------------------
# Recovery
# ------------------------------------------------------------------------------------------------
def test_short_fit_1d_moves_toward_truth(case1):
    """A short, deterministic fit (seed 0): the loss falls, the noise level is recovered and
    D, r land in a band around the truth; the accurate fit is the slow test below."""
    model, obs, _ = case1
    sch = Schedule(n_adam=1500, ramp_steps=1000, n_lbfgs=300, chunk=500)
    fit = fit_pinn(model, obs, Gaussian(), fixed=FIXED_IC, schedule=sch, width=24,
                   n_collocation=512, random_state=0)
    h = fit.history
    assert np.isfinite(h[:, 0]).all() and not fit.diverged
    assert h[-1, 0] < h[fit.n_adam - 1, 0] < h[0, 0]
    assert fit.params["sigma"] == pytest.approx(0.05, rel=0.2)
    assert fit.params["r"] == pytest.approx(1.0, rel=0.15)
    assert 0.02 < fit.params["D"] < 0.15


@pytest.mark.slow
def test_accurate_fit_1d():
    model, obs, _ = make_1d()
    fit = fit_pinn(model, obs, Gaussian(), fixed=FIXED_IC, random_state=0)
    assert fit.params["D"] == pytest.approx(0.1, rel=0.05)
    assert fit.params["r"] == pytest.approx(1.0, rel=0.05)
