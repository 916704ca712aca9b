"""Batched refits on CPU: sequential (``lax.map``) against ``vmap`` in batches, one run.

100 parametric-bootstrap refits of the 1-D yardstick fit (``make_fisher_kpp_1d(random_state=5000)``,
Gaussian introduction at a known date, 7 parameters, 64 cells), Hessian-whitened BFGS from the
estimate, as ``SolverEstimator`` does them. Times are wall seconds after compilation; the ratio
against the sequential map is what matters (the machine is shared). Writes
benchmarks/results/refits.json.

    python benchmarks/bench_refits.py
"""

import json
import os
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import physreg
from physreg.inference import wald
from physreg.inference._optimize import minimize_batch, whitening

OUT = Path(__file__).parent / "results" / "refits.json"


def main():
    warnings.simplefilter("ignore")
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=5000)
    est = physreg.SolverEstimator(initial="gaussian", t0=float(ds.attrs["t0"]), grid=64,
                                  n_starts=2, tol=1e-7, random_state=1).fit(ds)
    prob, z_hat = est.problem_, jnp.asarray(est.z_)
    p = prob.params(z_hat)
    nuis = {k: p[k] for k in est.likelihood_.nuisance_names()}
    keys = jax.random.split(jax.random.PRNGKey(0), 100)
    ys = jax.vmap(lambda k: est.likelihood_.sample(k, prob.mu(z_hat), nuis, prob.extras))(keys)
    ws = jnp.ones_like(ys)
    pre = jnp.asarray(whitening(wald(prob.nll, z_hat, None).hessian))
    z0 = jnp.broadcast_to(z_hat, (100, z_hat.shape[0]))

    def run(bs):
        r = minimize_batch(prob.nll, z0, (ys, ws), max_steps=500, rtol=1e-7, atol=1e-7,
                           data_axis=0, precond=pre, batch_size=bs)
        jax.block_until_ready(r)
        return r

    rows, ref = [], None
    for bs in (1, 10, 25, 100):
        run(bs)  # compile
        t = time.perf_counter()
        r = run(bs)
        sec = time.perf_counter() - t
        x = np.asarray(r.x)
        ref = x if ref is None else ref
        rows.append({"batch_size": bs, "seconds": sec, "iterations_mean": float(np.mean(r.n_iter)),
                     "iterations_max": int(np.max(r.n_iter)),
                     "max_abs_diff_vs_sequential": float(np.max(np.abs(x - ref)))})
    for row in rows:
        row["time_vs_sequential"] = row["seconds"] / rows[0]["seconds"]
        print(row, flush=True)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"load_average": os.getloadavg(), "jax": jax.__version__,
                               "backend": jax.default_backend(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
