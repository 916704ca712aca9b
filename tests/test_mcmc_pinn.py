"""Warm-started random-walk Metropolis (physreg.inference._warm) and the PINN forward model of
``MCMCEstimator(forward="pinn")`` (physreg.pinn._forward).

The sampler is checked on a Gaussian target whose log-density goes through an iterative inner
solve carried along the chain: converged, the chain is plain RWMH and recovers the target;
lagging (one inner step), it is biased, and the lag shows in the recorded auxiliary statistic.
The forward model is checked on a tiny PINN: the first training and a warm-started retraining
lower the physics loss at their parameters.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import physreg  # noqa: F401  (float64 policy)
from physreg.inference import _diagnostics as diag
from physreg.inference._warm import run_warm_rwmh
from physreg.likelihoods import Gaussian
from physreg.pinn import build_problem
from physreg.pinn._forward import PINNForward

from .test_pinn import FIXED_IC, TRUTH, make_1d, space_of

MU = np.array([1.0, -2.0])
COV = np.array([[1.0, 0.8], [0.8, 2.0]])
PREC = np.linalg.inv(COV)
FAST = {"xla_backend_optimization_level": 0}


def gaussian(z):
    d = z - MU
    return -0.5 * d @ PREC @ d


def inner_solver(n_iter):
    """``aux`` approaches the proposal by halving the gap ``n_iter`` times; the density is
    evaluated at ``aux`` (exact only once the gap has closed)."""

    def logdensity_aux(z, aux):
        a = aux
        for _ in range(n_iter):
            a = a + 0.5 * (z - a)
        return gaussian(a), a

    return logdensity_aux


def run(n_iter, seed=0):
    starts = MU + np.random.default_rng(seed).standard_normal((4, 2))
    return run_warm_rwmh(inner_solver(n_iter), jnp.zeros(2), starts, num_chains=4,
                         num_warmup=1000, num_samples=4000, key=seed,
                         aux_stat=lambda a: jnp.sum(a**2), compiler_options=FAST)


def test_converged_inner_solve_recovers_the_target():
    res = run(60)
    flat = res.samples.reshape(-1, 2)
    mcse = diag.mcse_mean(res.samples)
    assert np.all(np.abs(flat.mean(0) - MU) < 4 * mcse), (flat.mean(0), mcse)
    var = flat.var(0, ddof=1)
    assert np.all(np.abs(var / np.diag(COV) - 1) < 0.15), var
    assert 0.1 < res.info["acceptance"] < 0.6
    assert res.sampler == "warm_rwmh"
    assert res.sample_stats["aux_stat"].shape == (4, 4000)
    assert np.max(diag.rhat(res.samples)) < 1.02


def test_lagging_inner_solve_is_biased():
    """With one halving step the density is read halfway between the old state and the
    proposal: the chain over-disperses (it accepts moves it should reject)."""
    res = run(1)
    var = res.samples.reshape(-1, 2).var(0, ddof=1)
    assert np.all(var / np.diag(COV) > 1.3), var


def test_bad_inputs():
    f = inner_solver(5)
    with pytest.raises(ValueError, match="z_init"):
        run_warm_rwmh(f, jnp.zeros(2), np.zeros((3, 2)), num_chains=4, key=0)
    with pytest.raises(ValueError, match="proposal_cov"):
        run_warm_rwmh(f, jnp.zeros(2), MU, num_chains=2, key=0, proposal_cov=-np.eye(2))
    with pytest.raises(ValueError, match="not finite"):
        run_warm_rwmh(lambda z, a: (-jnp.inf, a), jnp.zeros(2), MU, num_chains=2,
                      num_warmup=2, num_samples=2, key=0, compiler_options=FAST)


@pytest.fixture(scope="module")
def forward():
    model, obs, _ = make_1d()
    lik = Gaussian()
    space = space_of(model, lik, {**FIXED_IC, "gamma": 1.0})
    prob, data, w = build_problem(model, obs, lik, space, key=jax.random.PRNGKey(0), width=12,
                                  depth=2, modes=4, n_collocation=128, n_initial=64,
                                  n_boundary=16, lambda_pde=100.0, lambda_ic=1000.0,
                                  hard_ic=False, time_power=2.0)
    z = jnp.asarray(space.pack({"D": TRUTH["D"], "r": TRUTH["r"], "sigma": 0.05}))
    return PINNForward(prob, data, n_steps=10), w, z


def test_pinn_forward_trains_and_retrains(forward):
    fwd, w0, z = forward
    loss0 = float(fwd.physics_loss(w0, z))
    nn, loss = jax.jit(lambda w, z: fwd.train(w, z, 300, 50))(w0, z)
    assert np.isfinite(float(loss)) and float(loss) < 0.2 * loss0, (loss0, float(loss))
    ll = float(fwd.loglik(nn, z))
    assert np.isfinite(ll)
    # a neighbouring theta: the network of z is no longer a solution there; retraining from
    # it lowers the physics loss at the new theta
    z2 = z + jnp.array([0.1, -0.05, 0.0])
    before = float(fwd.physics_loss(nn, z2))
    nn2, after = jax.jit(lambda w, z: fwd.retrain(w, z))(nn, z2)
    assert float(after) < 0.8 * before, (before, float(after))
    # sigma enters through the observation model only
    z3 = z.at[2].add(0.1)
    assert float(fwd.data_loss(nn, z3)) != float(fwd.data_loss(nn, z))
    u = np.asarray(fwd.predict(nn, z, np.array([1.0, 4.0]), np.array([2.0, 2.0])))
    assert np.all(np.isfinite(u)) and u.shape == (2,)


@pytest.mark.slow
def test_mcmc_estimator_pinn_forward_end_to_end():
    from physreg.mcmc import MCMCEstimator

    from .test_solver_estimator import make_data

    truth = {"gamma": 1.0, "ic_x": 2.0, "ic_width": 0.3, "ic_mass": 0.5}
    data = make_data(seed=3, n_times=6, n_sites=15)
    est = MCMCEstimator(forward="pinn", initial="gaussian", t0=0.0, grid=64, fixed=truth,
                        num_chains=2, num_warmup=60, num_samples=60, random_state=0,
                        pinn_options=dict(width=16, depth=2, n_collocation=256, n_adam=500,
                                          n_lbfgs=200, retrain_steps=5),
                        compiler_options=FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(data)
    stats = est.posterior_["sample_stats"]
    assert "physics_loss" in stats and np.all(np.isfinite(stats["physics_loss"].values))
    assert est.posterior_["posterior"]["D"].shape == (2, 60)
    assert np.all(np.isfinite(est.params_.values))
    assert est.pinn_train_s_ > 0


@pytest.mark.slow
def test_mcmc_estimator_pinn_forward_smc():
    # Tempered SMC whose particles carry their networks (tempered from the widened Laplace
    # approximation): the mechanics end to end on a small, inexact PINN. Its accuracy
    # against solver-NUTS is measured by studies/mcmc_metamodels.py (pinn_smc).
    from physreg.mcmc import MCMCEstimator

    from .test_solver_estimator import make_data

    truth = {"gamma": 1.0, "ic_x": 2.0, "ic_width": 0.3, "ic_mass": 0.5}
    data = make_data(seed=3, n_times=6, n_sites=15)
    est = MCMCEstimator(forward="pinn", sampler="smc", initial="gaussian", t0=0.0, grid=64,
                        fixed=truth, smc_particles=16, smc_mcmc_steps=2, random_state=0,
                        pinn_options=dict(width=16, depth=2, n_collocation=256, n_adam=500,
                                          n_lbfgs=200, retrain_steps=5, smc_init_steps=20),
                        compiler_options=FAST)
    est.fit(data)
    info = est.result_.info
    assert info["tempering_schedule"][-1] == 1.0 and np.isfinite(est.log_evidence_)
    assert "forward_state" not in info and info["reference_log_mass"] <= 0.0
    stats = est.posterior_["sample_stats"]
    assert stats["physics_loss"].shape == (1, 16)
    assert np.all(np.isfinite(stats["physics_loss"].values))
    assert est.posterior_["posterior"]["D"].shape == (1, 16)
    assert np.all(np.isfinite(est.params_.values))
