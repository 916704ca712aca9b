"""PINN refits on CPU: one after another against ``vmap`` in one batch, in one run.

The PINN's bootstrap and profile intervals refit network and parameters from the fitted state
(``PINNEstimator._refit_batch``: ``refit_lbfgs`` L-BFGS iterations). This script fits the 1-D
yardstick case (``make_fisher_kpp_1d(random_state=1000)``, heat-kernel ansatz, t0 known), draws
``--n-refits`` parametric-bootstrap data sets from the fit and refits them

- one after another (``batch_size=1``, the default: the fit's own compiled L-BFGS program), and
- vmapped in one batch (``batch_size=n``), twice: the first run includes its compilation.

Reported: seconds per refit, their ratio, and the mean and sd of the refitted D of each way
(the same iterations: they must agree). Writes benchmarks/results/pinn_refits.json.

    python benchmarks/bench_pinn_refits.py --n-refits 10
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import physreg
from physreg.pinn._problem import mu_at, with_observations
from physreg.pinn._train import stack_trees

OUT = Path(__file__).parent / "results" / "pinn_refits.json"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-refits", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1000)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=a.seed)
    est = physreg.PINNEstimator(initial="gaussian", t0=float(ds.attrs["t0"]), hard_ic="heat",
                                random_state=a.seed).fit(ds)
    res = est.pinn_
    z_hat = jnp.asarray(res.z)
    mu = mu_at(res.problem, res.variables, res.data, z_hat)
    p = est.space_.unpack(z_hat)
    nuis = {k: p[k] for k in est.likelihood_.nuisance_names()}
    B = a.n_refits
    keys = jax.random.split(jax.random.PRNGKey(0), B)
    ys = jax.vmap(lambda k: est.likelihood_.sample(k, mu, nuis, res.data.extras))(keys)
    datas = with_observations(stack_trees([res.data] * B), y=ys)
    z0 = jnp.broadcast_to(z_hat, (B, z_hat.size))

    runs = []
    for label, bs in (("sequential", 1), ("vmap (with compilation)", B), ("vmap", B)):
        t = time.perf_counter()
        z, _, ok = est._refit_batch(datas, z0, bs)
        dt = time.perf_counter() - t
        D = np.exp(z[:, est.space_.free.index("D")])
        runs.append({"way": label, "batch_size": bs, "seconds": dt, "seconds_per_refit": dt / B,
                     "D_mean": float(D.mean()), "D_sd": float(D.std()), "n_ok": int(ok.sum())})
        print(json.dumps(runs[-1]), flush=True)
    out = {"seed": a.seed, "n_refits": B, "refit_lbfgs": est.refit_lbfgs,
           "fit_seconds": est.fit_time_, "host": platform.node(), "runs": runs,
           "ratio_vmap_to_sequential": runs[2]["seconds"] / runs[0]["seconds"]}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
