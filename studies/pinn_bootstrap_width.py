"""Why are the PINN's bootstrap intervals for D ~10% too narrow? Two candidate causes, measured.

``studies/coverage_pinn.py --methods bootstrap`` (1-D heat case, lambda_pde 300, resampled
points) gives intervals whose half-width is 1.76-1.86 standard deviations of the PINN's D over
the replicates, where 1.96 is right. On the log scale the bootstrap's sd equivalent
(half-width / 1.96) is ~0.050 where the estimate's sd over replicates is ~0.055. Candidates:

1. **Optimisation noise.** The estimate depends on the PINN's own random numbers (network
   initialisation, collocation draws), not only on the data. A parametric bootstrap warm-started
   from the fit resamples the data but keeps the fit's network: it cannot see that part of the
   spread. Measured here by refitting each data set with ``--n-starts`` values of
   ``random_state`` (the first one the coverage run's own, ``random_state = seed``) and taking
   the pooled within-data-set sd of log D.
2. **Under-converged refits.** Each refit runs ``refit_lbfgs`` (500) L-BFGS iterations from the
   fit; if they stop short of the resample's optimum the replicates are pulled towards the fit.
   Measured here (``--refit-check B``) by running the same B parametric resamples (same
   ``random_state``, so the same simulated data) with 500 and with ``--long`` iterations and
   comparing the replicates' spread, pair by pair.

If the two add up, ``sd_boot^2 + sd_opt^2`` should match the estimate's variance over the
replicates (read from ``pinn_bias_correction.csv``, 100 replicates, and the bootstrap CSV).

    python studies/pinn_bootstrap_width.py --seeds 1000,1001,1002 --n-starts 5 --refit-check 20

Rows go to ``studies/results/pinn_bootstrap_width.csv`` (one per fit) and the summary to
``pinn_bootstrap_width.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from pinn_vs_solver import append_csv, pinn_initial

import physreg

OUT = Path(__file__).parent / "results"
CSV = OUT / "pinn_bootstrap_width.csv"
BOOT_CSV = OUT / "coverage_pinn_heat_bootstrap_lam300_resample.csv"
BIAS_CSV = OUT / "pinn_bias_correction.csv"
PARAMS = ("D", "r")
STRIDE = 1_000_003       # random_state of start k: seed + k * STRIDE (start 0: the coverage run's)


def estimator(ds, random_state, **kw):
    """The coverage run's estimator (heat ansatz, lambda_pde 300, resampled points)."""
    return physreg.PINNEstimator(**pinn_initial("heat", ds), lambda_pde=300.0, resample=True,
                                 random_state=random_state, **kw)


def fit(est, ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(ds)
    return est


def starts(seed, n_starts):
    """Fits of one data set with ``n_starts`` values of random_state: rows for the CSV."""
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=seed)
    rows = []
    for k in range(n_starts):
        t = time.perf_counter()
        est = fit(estimator(ds, seed + k * STRIDE), ds)
        row = {"seed": seed, "start": k, "seconds": time.perf_counter() - t}
        row.update({f"{p}_hat": float(est.params_.sel(param=p)) for p in PARAMS})
        rows.append(row)
        print(f"seed {seed} start {k}: D {row['D_hat']:.5f} r {row['r_hat']:.5f} "
              f"({row['seconds']:.0f} s)", flush=True)
    return rows


def refit_check(seed, n_boot, long):
    """The same ``n_boot`` parametric resamples refitted with 500 and ``long`` L-BFGS
    iterations: log-scale replicates of each, (n_boot, 2) per setting, and the seconds."""
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=seed)
    est = fit(estimator(ds, seed), ds)
    out = {}
    for n in (500, long):
        est.set_params(refit_lbfgs=n)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.confidence_intervals(method="bootstrap", n_boot=n_boot)
        b = est.bootstrap_.sel(param=list(PARAMS)).values
        out[n] = (np.log(b), time.perf_counter() - t)
        print(f"refit_lbfgs {n}: sd log D {np.nanstd(np.log(b[:, 0]), ddof=1):.4f} "
              f"({out[n][1]:.0f} s)", flush=True)
    hat = np.log([float(est.params_.sel(param=p)) for p in PARAMS])
    return out, hat


def what_if(boot, bias, sd_opt):
    """Coverage of the bootstrap intervals of ``BOOT_CSV`` shifted by the bias study's
    per-seed bias (as ``pinn_bias_correction.py`` does), then widened on the log scale by the
    pooled optimisation noise: each side's length ``h`` becomes ``sqrt(h^2 + (z sd_opt)^2)``
    (the interval of an estimate with that much independent noise added). A diagnosis: the
    noise is measured on three data sets, not per replicate."""
    z = 1.959963984540054
    rows = boot.merge(bias[["seed", *(f"{p}_log_bias" for p in PARAMS)]], on="seed")
    out = {"n_replicates": len(rows), "z": z}
    for p in PARAMS:
        true = np.log(rows[f"{p}_true"].to_numpy())
        b = rows[f"{p}_log_bias"].to_numpy()
        c = np.log(rows[f"{p}_hat"].to_numpy()) - b
        for m in ("bootstrap", "bootstrap_basic"):
            lo = np.log(rows[f"{p}_{m}_lo"].to_numpy()) - b
            hi = np.log(rows[f"{p}_{m}_hi"].to_numpy()) - b
            for name, add in (("corrected", 0.0), ("corrected_opt_noise", z * sd_opt[p])):
                lo2 = c - np.sqrt((c - lo) ** 2 + add ** 2)
                hi2 = c + np.sqrt((hi - c) ** 2 + add ** 2)
                cov = float(np.mean((lo2 <= true) & (true <= hi2)))
                out[f"{p}_{m}_{name}_coverage"] = cov
                out[f"{p}_{m}_{name}_mcse"] = float(np.sqrt(cov * (1 - cov) / len(rows)))
                out[f"{p}_{m}_{name}_median_rel_width"] = float(np.median(
                    np.exp(hi2) - np.exp(lo2)) / np.exp(true[0]))
    return out


def summarize(refit=None, long=None):
    rows = pd.read_csv(CSV)
    out = {"n_fits": len(rows), "seeds": sorted(int(s) for s in rows.seed.unique()),
           "median_seconds_per_fit": float(rows.seconds.median())}
    boot = pd.read_csv(BOOT_CSV)
    bias = pd.read_csv(BIAS_CSV)
    for p in PARAMS:
        logs = np.log(rows[f"{p}_hat"])
        g = logs.groupby(rows.seed)
        dof = int((g.count() - 1).sum())
        within = float(np.sqrt(((logs - g.transform("mean")) ** 2).sum() / dof))
        sd_rep = float(np.log(bias[f"{p}_hat"]).std(ddof=1))
        half = (np.log(boot[f"{p}_bootstrap_basic_hi"])
                - np.log(boot[f"{p}_bootstrap_basic_lo"])) / 2 / 1.96
        sd_boot = float(np.sqrt(np.mean(half ** 2)))
        out[p] = {
            "opt_noise_sd_log": within, "opt_noise_dof": dof,
            "per_seed_sd_log": {str(s): float(v) for s, v in g.std(ddof=1).items()},
            "replicates_sd_log": sd_rep, "n_replicates": len(bias),
            "bootstrap_sd_log_rms": sd_boot, "n_bootstrap_replicates": len(boot),
            "boot_plus_opt_sd_log": float(np.hypot(sd_boot, within)),
            # the bias study's cold refits (fresh networks on solver data at the fit, 4 per
            # replicate): rms of their per-replicate sd
            "cold_refit_sd_log_rms": float(np.sqrt(np.mean(bias[f"{p}_sim_sd_log"] ** 2))),
            "missing_sd_log": float(np.sqrt(max(sd_rep ** 2 - sd_boot ** 2, 0.0))),
        }
    out["what_if"] = what_if(boot, bias, {p: out[p]["opt_noise_sd_log"] for p in PARAMS})
    if refit is not None:
        (short, ts), (lng, tl) = refit[0][500], refit[0][long]
        hat = refit[1]
        out["refit_check"] = {"n_boot": int(short.shape[0]), "long": long,
                              "seconds_500": ts, f"seconds_{long}": tl}
        for j, p in enumerate(PARAMS):
            a, b = short[:, j], lng[:, j]
            ok = np.isfinite(a) & np.isfinite(b)
            out["refit_check"][p] = {
                "sd_log_500": float(np.std(a[ok], ddof=1)),
                f"sd_log_{long}": float(np.std(b[ok], ddof=1)),
                "sd_ratio": float(np.std(b[ok], ddof=1) / np.std(a[ok], ddof=1)),
                # pairwise: do the longer refits move further from the fit?
                "median_abs_dev_ratio": float(np.median(np.abs(b[ok] - hat[j]))
                                              / np.median(np.abs(a[ok] - hat[j]))),
                "rms_pair_diff_log": float(np.sqrt(np.mean((b[ok] - a[ok]) ** 2))),
            }
    elif (OUT / "pinn_bootstrap_width.json").exists():      # keep an earlier refit check
        prev = json.loads((OUT / "pinn_bootstrap_width.json").read_text())
        if "refit_check" in prev:
            out["refit_check"] = prev["refit_check"]
    (OUT / "pinn_bootstrap_width.json").write_text(json.dumps(out, indent=1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1000,1001,1002")
    ap.add_argument("--n-starts", type=int, default=5)
    ap.add_argument("--refit-check", type=int, default=0, metavar="B",
                    help="also compare B bootstrap refits at 500 and --long iterations "
                         "(first seed)")
    ap.add_argument("--long", type=int, default=2000)
    a = ap.parse_args()
    if a.n_starts < 2:
        ap.error("--n-starts must be >= 2 (a within-data-set sd needs two fits)")
    OUT.mkdir(exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    done = set()
    if CSV.exists():
        done = {(int(r.seed), int(r.start)) for r in pd.read_csv(CSV).itertuples()}
    for seed in seeds:
        if all((seed, k) in done for k in range(a.n_starts)):
            continue
        rows = [r for r in starts(seed, a.n_starts) if (r["seed"], r["start"]) not in done]
        append_csv(CSV, rows, list(rows[0]))
    refit = refit_check(seeds[0], a.refit_check, a.long) if a.refit_check else None
    print(json.dumps(summarize(refit, a.long), indent=1))


if __name__ == "__main__":
    main()
