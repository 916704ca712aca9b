"""Solver cost per draw of ``MCMCEstimator.importance_correct`` by chunk size (2-D bundled case).

A NUTS chain through the focused 2-D metamodel (``studies/metamodel_quality_2d.py --only
full_log_focus`` must have saved ``studies/results/metamodels/2d_full_log_focus.eqx``), 4 x 500
draws; then the reweighting with each chunk size (``solver_s``: the solves' run time, the
compilation excluded), next to the chain's own warm-up + sampling time in the same run. Writes
``benchmarks/results/importance_chunk.json``.

    python benchmarks/bench_importance_chunk.py
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "studies"))

from mcmc_metamodels_2d import MM, MODEL  # noqa: E402

import physreg  # noqa: E402


def main():
    mm = MM / "2d_full_log_focus"
    if not mm.with_suffix(".eqx").is_file():
        raise SystemExit(f"{mm}.eqx missing: run studies/metamodel_quality_2d.py --only "
                         "full_log_focus first")
    obs, cov = physreg.datasets.load_example("fkpp2d_poisson")
    est = physreg.MCMCEstimator(forward="hyperpinn", metamodel=str(mm), **MODEL, num_chains=4,
                                num_warmup=200, num_samples=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(obs, cov)
    out = {"n_draws": 2000, "chain_warmup_sampling_s": est.sampling_time_,
           "loadavg_1min": os.getloadavg()[0], "chunks": {}}
    for chunk in (8, 32, 128, 512):
        t = time.perf_counter()
        est.importance_correct(chunk=chunk)
        s = est.importance_.attrs["solver_s"]
        out["chunks"][chunk] = {"solver_s": s, "ms_per_draw": 1000 * s / 2000,
                                "call_s_incl_compile": time.perf_counter() - t}
        print(chunk, out["chunks"][chunk], flush=True)
    path = ROOT / "benchmarks" / "results" / "importance_chunk.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
