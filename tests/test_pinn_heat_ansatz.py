"""The heat-kernel ansatz (``hard_ic="heat"``): exact introduction at t0, no-flux ends, the
heat kernel and the logistic saturation it is built from, and a short fit (tiny network)."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import physreg
from physreg.data import validate_observations
from physreg.likelihoods import Gaussian
from physreg.model import Domain, GaussianIntroductions, ParameterSpace, ReactionDiffusion
from physreg.pinn import Variables, build_problem
from physreg.pinn._physics import heat_introductions, saturated_growth, scalar_network

IC = dict(ic_x=2.0, ic_width=0.3, ic_mass=0.5)


@pytest.fixture(scope="module")
def case():
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=0)
    obs = validate_observations(ds[["density"]], domain={"x": (0.0, 10.0)})
    model = ReactionDiffusion(Domain((0.0, 10.0)), initial=GaussianIntroductions(t0=0.0))
    lik = Gaussian()
    names = model.param_names() + lik.nuisance_names()
    tr = {**model.transforms(), **lik.nuisance_transforms()}
    b = {**model.default_bounds({"time": 10.0, "u": 1.0}), **lik.nuisance_bounds()}
    space = ParameterSpace.build(names, tr, b, None)
    return model, obs, lik, space


def _network(case, key, **theta):
    model, obs, lik, space = case
    prob, _, w = build_problem(model, obs, lik, space, key=jax.random.PRNGKey(key), width=8,
                               depth=2, modes=4, n_collocation=64, hard_ic="heat")
    z = space.pack({"D": 0.1, "r": 1.0, "gamma": 1.0, **IC, "sigma": 0.05, **theta})
    return prob, scalar_network(prob.network, prob.jinns_params(Variables(nn=w, theta=z), z))


@pytest.mark.parametrize("key", [0, 1])
def test_heat_ansatz_is_the_introduction_at_t0(case, key):
    model = case[0]
    prob, f = _network(case, key)
    assert prob.ic_kind == "hard" and prob.network.kind == "heat"
    xs = jnp.linspace(0.0, 1.0, 101)
    u0 = jax.jit(jax.vmap(lambda x: f(jnp.array([0.0, x]))))(xs)
    expected = model.initial.evaluate(IC, (10.0 * xs,)) / prob.scales.u + prob.network.eps
    # exact up to the mirror images' tails (the image at -2 doubles u0(0) = 2e-10 there)
    np.testing.assert_allclose(np.asarray(u0), np.asarray(expected), rtol=1e-9, atol=1e-9)
    bulk = np.asarray(expected) > 1e-3
    np.testing.assert_allclose(np.asarray(u0)[bulk], np.asarray(expected)[bulk], rtol=1e-12)


@pytest.mark.parametrize("D", [0.1, 1.0])
def test_heat_ansatz_has_no_flux_at_the_ends(case, D):
    _, f = _network(case, 1, D=D, ic_x=1.0, ic_width=0.8)
    pts = jnp.array([[t, x] for t in (0.0, 0.05, 0.5, 1.0) for x in (0.0, 1.0)] + [[0.3, 0.15]])
    dudx = np.asarray(jax.jit(jax.vmap(jax.grad(f)))(pts)[:, 1])
    np.testing.assert_array_less(np.abs(dudx[:-1]), 1e-10)
    # and not a flat function: the interior has a gradient of order one
    assert abs(dudx[-1]) > 1e-3


def test_heat_kernel_solves_the_heat_equation_and_saturation_the_logistic_ode():
    ic = GaussianIntroductions()
    D = 0.3

    def H(t, x):
        return heat_introductions(ic, IC, (x,), t, D, (0.0,), (10.0,))

    t = jnp.array([0.5, 2.0, 4.0])
    x = jnp.array([0.3, 2.5, 9.7])
    h_t = jax.vmap(jax.grad(H, 0))(t, x)
    h_xx = jax.vmap(jax.grad(jax.grad(H, 1), 1))(t, x)
    np.testing.assert_allclose(np.asarray(h_t), D * np.asarray(h_xx), rtol=1e-10, atol=1e-14)
    # mass is conserved (no-flux ends)
    xs = jnp.linspace(0.0, 10.0, 4001)
    mass = [float(jnp.trapezoid(H(t, xs), xs)) for t in (0.0, 5.0, 50.0)]
    np.testing.assert_allclose(mass, IC["ic_mass"], atol=1e-6)
    tau = jnp.array([0.0, 0.7, 3.0])
    for r, gamma in [(1.0, 1.0), (-0.5, 2.0), (1e-9, 1.0)]:
        S = lambda tau, r=r, gamma=gamma: saturated_growth(0.2, tau, r, gamma)
        s, ds = jax.jvp(S, (tau,), (jnp.ones(3),))
        np.testing.assert_allclose(np.asarray(ds), np.asarray(s * (r - gamma * s)), atol=1e-9)
        assert abs(float(s[0]) - 0.2) < 1e-15


def test_heat_ansatz_fit_runs(case):
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=0)
    est = physreg.PINNEstimator(initial="gaussian", t0=0.0, hard_ic="heat", width=8, depth=2,
                                modes=4, n_collocation=64, n_adam=50, n_lbfgs=0,
                                random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(ds)
    assert est.pinn_.problem.network.kind == "heat"
    # lambda_pde="auto" (the default) is 300 with the heat ansatz, and that is what the loss uses
    assert est.lambda_pde_ == 300.0
    assert float(est.pinn_.data.lambdas[0]) == 300.0
    assert np.isfinite(est.params_.values).all()
    assert np.isfinite(est.loss_) and np.isfinite(est.residual_rms_)
    with pytest.raises(ValueError, match="hard_ic"):
        physreg.PINNEstimator(initial="gaussian", t0=0.0, hard_ic="heta").fit(ds)


def test_heat_kernel_2d_is_the_introduction_at_t0_with_no_flux_walls():
    ic = GaussianIntroductions(n=2)
    p = dict(ic0_x=2.0, ic0_y=2.0, ic0_width=0.4, ic0_mass=0.7,
             ic1_x=3.5, ic1_y=1.5, ic1_width=0.6, ic1_mass=0.3)  # far from the walls
    lower, length, D = (0.0, -1.0), (6.0, 5.0), 0.5

    def H(t, x, y):
        return heat_introductions(ic, p, (x, y), t, D, lower, length)

    x = jnp.array([1.2, 3.0, 5.5])
    y = jnp.array([2.0, 0.0, 3.5])
    np.testing.assert_allclose(np.asarray(jax.vmap(lambda a, b: H(0.0, a, b))(x, y)),
                               np.asarray(ic.evaluate(p, (y, x))), rtol=1e-9, atol=1e-8)  # image tails
    t = jnp.array([0.3, 1.0, 4.0])
    h_t = jax.vmap(jax.grad(H, 0))(t, x, y)
    lap = (jax.vmap(jax.grad(jax.grad(H, 1), 1))(t, x, y)
           + jax.vmap(jax.grad(jax.grad(H, 2), 2))(t, x, y))
    np.testing.assert_allclose(np.asarray(h_t), D * np.asarray(lap), rtol=1e-10, atol=1e-14)
    # walls x = 0, 6 and y = -1, 4: the normal derivative vanishes
    gx = jax.vmap(jax.grad(H, 1), (None, 0, 0))(2.0, jnp.array([0.0, 6.0]), jnp.array([0.5, 2.0]))
    gy = jax.vmap(jax.grad(H, 2), (None, 0, 0))(2.0, jnp.array([3.0, 1.0]), jnp.array([-1.0, 4.0]))
    np.testing.assert_array_less(np.abs(np.concatenate([np.asarray(gx), np.asarray(gy)])), 1e-12)


@pytest.mark.parametrize("heat_rates", ["local", "mean"])
def test_heat_ansatz_with_a_growth_covariate(heat_rates):
    """2-D, covariate in r: at t0 the ansatz is the introduction; later, at a covariate grid
    node (where the bilinear interpolation is exact), its spread is the saturated heat kernel
    with r = model.fields(...) at the local covariate (``heat_rates="local"``) or at the
    covariate's mean over its grid (``"mean"``, the default: the same rate everywhere), and
    with r_elevation = 0 it is the constant-rate spread."""
    obs, cov = physreg.datasets.load_example("fkpp2d_poisson")
    est = physreg.PINNEstimator(likelihood=physreg.likelihoods.Poisson(kappa=10.0),
                                growth_covariates=("elevation",), initial="gaussian", t0=0.0,
                                hard_ic="heat", heat_rates=heat_rates, width=8, depth=2, modes=3,
                                n_collocation=64, n_adam=2, n_lbfgs=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(obs, cov)
    res = est.pinn_
    prob, space, sc = res.problem, est.space_, res.problem.scales
    assert prob.network.kind == "heat" and prob.network.cov_values is not None
    theta = {n: float(est.params_.sel(param=n)) for n in space.free}
    theta.update(D=0.8, r=1.1, gamma=1.0, r_elevation=-0.4, ic_x=4.0, ic_y=6.0, ic_width=0.5,
                 ic_mass=5.0)
    model = est.model_

    def spread(th, pts):
        z = space.pack(th)
        params = prob.jinns_params(Variables(nn=res.variables.nn, theta=z), z)
        return np.asarray(jax.vmap(lambda q: prob.network.spread(q, params))(pts))

    xg, yg = np.asarray(cov.x.values), np.asarray(cov.y.values)
    ix, iy = [1, len(xg) // 3, len(xg) // 2], [2, len(yg) // 2, len(yg) - 2]
    xs, ys = xg[ix], yg[iy]
    elev = np.asarray(cov["elevation"].transpose("y", "x").values)[iy, ix]
    if heat_rates == "mean":
        elev = np.full(3, float(cov["elevation"].mean()))

    def unit_points(tau):
        return jnp.asarray([[tau / sc.T, (x - sc.lower[0]) / sc.length[0],
                             (y - sc.lower[1]) / sc.length[1]] for x, y in zip(xs, ys, strict=True)])

    for tau in (0.0, 0.4 * sc.T, sc.T):
        pts = unit_points(tau)
        D, r, gamma = model.fields(theta, {"elevation": jnp.asarray(elev)})
        H0 = heat_introductions(model.initial, theta, (jnp.asarray(xs), jnp.asarray(ys)), tau,
                                D, sc.lower, sc.length)
        expected = np.asarray(saturated_growth(H0, tau, r, gamma))
        np.testing.assert_allclose(spread(theta, pts), expected, rtol=1e-10, atol=1e-14)
        # the rate varies between the points ("local") or not ("mean")
        assert len(np.unique(np.round(np.asarray(r), 6))) == (3 if heat_rates == "local" else 1)
        flat = dict(theta, r_elevation=0.0)
        H0f = heat_introductions(model.initial, flat, (jnp.asarray(xs), jnp.asarray(ys)), tau,
                                 0.8, sc.lower, sc.length)
        np.testing.assert_allclose(spread(flat, pts),
                                   np.asarray(saturated_growth(H0f, tau, 1.1, 1.0)),
                                   rtol=1e-10, atol=1e-14)
    # the network output at t0 is the introduction (u_hat scaled, + eps)
    pts0 = unit_points(0.0)
    z = space.pack(theta)
    f = scalar_network(prob.network, prob.jinns_params(Variables(nn=res.variables.nn, theta=z), z))
    u0 = np.asarray(jax.vmap(f)(pts0)) * sc.u
    np.testing.assert_allclose(u0, np.asarray(model.initial.evaluate(theta, (ys, xs))),
                               rtol=1e-6, atol=1e-6)
