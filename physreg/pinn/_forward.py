"""A PINN as the forward model of a sampler: theta -> u by physics-only training, warm-started.

The "marginal re-training" route to MCMC with a PINN: the network is *not* fitted to the data.
For a parameter vector ``z`` it minimises only the physics of the penalised objective of
:mod:`physreg.pinn._problem` (PDE residual, and the initial- and boundary-condition terms where
they are penalties), with ``z`` held fixed; the data enter only through the likelihood of the
trained network, as with a solver. Training from scratch at every proposal would cost a full
PINN fit; a random walk moves theta a little at a time, so a few L-BFGS iterations from the
weights of the current state of the chain track the solution (Pan et al.'s "warm-started"
PINN, the marginal re-training of the PINN-MCMC literature).

:class:`PINNForward` holds the problem and its data (fixed) and gives pure, jittable functions:

- :meth:`PINNForward.physics_loss` ``(nn, z) -> scalar``;
- :meth:`PINNForward.retrain` ``(nn, z) -> (nn, loss)``: ``n_steps`` L-BFGS iterations (zoom
  line search) on the network weights with ``z`` fixed, from ``nn`` (fresh L-BFGS memory, so the
  result depends only on ``(nn, z)``);
- :meth:`PINNForward.loglik` ``(nn, z) -> scalar``: the log-likelihood of the data under the
  network (the observation model's nuisances are read from ``z``);
- :meth:`PINNForward.train` ``(nn, z, n_adam, n_lbfgs)``: the first, long training (at the
  posterior mode) that the chains start from.

The chain built on it targets the solver posterior only as far as the retrained network is a
solution of the PDE: the acceptance ratio uses the likelihood of a network that depends on the
path (the warm start), so the chain is not exactly reversible. ``physreg.MCMCEstimator(
forward="pinn")`` reports the physics loss of every accepted state (``sample_stats``
``physics_loss``) so that a user can see how well the forward is solved along the chain.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._problem import PINNData, PINNProblem, Variables
from ._train import _finite, _like, _upcast

__all__ = ["PINNForward"]


class PINNForward(eqx.Module):
    """Physics-only retraining of a PINN at fixed parameters (see the module docstring).

    **Arguments:**

    - `problem`, `data`: from :func:`physreg.pinn.build_problem` (``data.lambdas`` weight the
      PDE, IC and BC terms; the data arrays serve the likelihood only).
    - `n_steps`: L-BFGS iterations per :meth:`retrain`.
    - `memory`: L-BFGS history size.
    """

    problem: PINNProblem
    data: PINNData
    n_steps: int = eqx.field(static=True, default=20)
    memory: int = eqx.field(static=True, default=10)

    def physics_loss(self, nn, z):
        """``lambda_pde * mean R^2 + lambda_ic * IC + lambda_bc * BC`` at fixed ``z``."""
        prob, data = self.problem, self.data
        v = Variables(nn=nn, theta=z)
        pde = jnp.mean(prob.residuals(v, data, z=z) ** 2)
        lam = data.lambdas
        return (lam[0] * pde + lam[1] * prob.ic_term(v, data, z)
                + lam[2] * prob.bc_term(v, data, z))

    def _lbfgs(self):
        return optax.lbfgs(memory_size=self.memory, linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=20, initial_guess_strategy="one"))

    def retrain(self, nn, z, n_steps: int | None = None):
        """``n_steps`` L-BFGS iterations from ``nn`` at fixed ``z``. Returns (nn, loss).

        A non-finite step is rejected (the weights are kept).
        """
        n = self.n_steps if n_steps is None else int(n_steps)
        ref = nn
        fn = lambda w: self.physics_loss(_like(w, ref), z)  # noqa: E731
        opt = self._lbfgs()
        master = _upcast(nn)
        state0 = opt.init(master)

        def body(carry, _):
            w, s = carry
            value, grad = optax.value_and_grad_from_state(fn)(w, state=s)
            upd, s_new = opt.update(grad, s, w, value=value, grad=grad, value_fn=fn)
            w_new = eqx.apply_updates(w, upd)
            ok = jnp.isfinite(value) & _finite(grad) & _finite(w_new)
            keep = lambda a, b: jax.tree.map(lambda x, y: jnp.where(ok, x, y), a, b)  # noqa: E731
            return (keep(w_new, w), keep(s_new, s)), None

        (w, _), _ = jax.lax.scan(body, (master, state0), None, length=n)
        w = _like(w, ref)
        return w, self.physics_loss(w, z)

    def data_loss(self, nn, z):
        """Mean negative log-likelihood of the observations (the data term of the fit)."""
        v = Variables(nn=nn, theta=z)
        return -jnp.mean(self.problem.loglik_terms(v, self.data, z))

    def train(self, nn, z, n_adam: int = 2000, n_lbfgs: int = 2000, lr: float = 3e-3,
              with_data: bool = True):
        """The first, long training at ``z``: Adam on the data and physics terms (``with_data``;
        a physics-only PINN of an introduction that grows by orders of magnitude collapses to
        the trivial solution u = 0, the data anchor it), then ``n_lbfgs`` physics-only L-BFGS
        iterations (so that the network is a solution of the PDE, not a smoother of the
        data). Returns (nn, physics loss)."""
        opt = optax.adam(optax.warmup_exponential_decay_schedule(
            0.0, lr, min(200, max(n_adam // 10, 1)), max(n_adam, 1), 0.02, end_value=lr * 0.02))

        def objective(w):
            out = self.physics_loss(w, z)
            return out + self.data_loss(w, z) if with_data else out

        grad_fn = jax.value_and_grad(objective)

        def body(carry, _):
            w, s = carry
            value, g = grad_fn(w)
            upd, s = opt.update(g, s, w)
            w_new = optax.apply_updates(w, upd)
            ok = jnp.isfinite(value) & _finite(g)
            return (jax.tree.map(lambda a, b: jnp.where(ok, a, b), w_new, w), s), value

        if n_adam:
            (nn, _), _ = jax.lax.scan(body, (nn, opt.init(nn)), None, length=int(n_adam))
        if n_lbfgs:
            return self.retrain(nn, z, n_steps=int(n_lbfgs))
        return nn, self.physics_loss(nn, z)

    def loglik(self, nn, z):
        """Log-likelihood of the data under the network with parameters ``z``."""
        v = Variables(nn=nn, theta=z)
        return jnp.sum(self.problem.loglik_terms(v, self.data, z))

    def predict(self, nn, z, t, *xs):
        """u (user units) at user-unit times and positions."""
        return self.problem.predict(Variables(nn=nn, theta=z), z, t, *xs)
