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
    python studies/pinn_bootstrap_width.py --replicates 39 --n-starts 4 [--max-minutes M] \
        [--shard i/n]

Rows go to ``studies/results/pinn_bootstrap_width.csv`` (one per fit) and the summary to
``pinn_bootstrap_width.json``. The second command fits each of the bootstrap run's first
seeds three more times (start 0 is that run's own fit: the first run reproduced it exactly):
each replicate's own noise with 3 degrees of freedom, as
``PINNEstimator.optimisation_noise(n_starts=3)`` measures it (its random states are drawn
differently; the arithmetic of the widening is the estimator's own function).

Measured (session 14, under load 3-5; ~65 s per fit): the optimisation noise of log D is
0.017 (pooled over 33 data sets, 102 degrees of freedom; r: 0.0025). The bootstrap's sd is
0.051 where the estimate's over 100 replicates is 0.055 (missing: 0.020);
``sqrt(0.051^2 + 0.017^2) = 0.054``. The bias study's cold refits (4 per replicate, fresh
networks) spread by 0.059. Refit check (seed 1000, 20 resamples): 2000 L-BFGS iterations
instead of 500 widen the replicates' sd of log D by 12.5% (0.060 -> 0.067; 529 s against
133 s), the pairs 0.035 apart: the longer refits, with fresh collocation points every 500
iterations, pick up the same noise.

Coverage of D, bias-corrected, widened by each replicate's own noise (``per_replicate``, all
100 replicates, seeds 1000-1099; sessions 16 and 17 added 1029-1099 with ``--replicates 100
--shard i/2``, 58 s median per fit; pooled noise 0.0155, 303 degrees of freedom): basic 0.86
-> 0.88 (MC s.e. 0.032), percentile 0.79 -> 0.81; median width 19.6% -> 20.7% of the truth.
The partial counts were optimistic: 0.88 -> 0.94 over the first 33, 0.88 -> 0.91 over 57.
The same with the pooled noise (``what_if_pooled``): basic 0.86 -> 0.88. r: unchanged.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from coverage_solver import coverage_summary
from pinn_fit_1d import timed_fit
from pinn_vs_solver import append_csv, pinn_initial, shard_of

import physreg
from physreg.inference import widen_for_noise

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


def starts(seed, ks):
    """Fits of one data set with the random_state of each start in ``ks``: rows for the CSV."""
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=seed)
    rows = []
    for k in ks:
        params, record = timed_fit(estimator(ds, seed + k * STRIDE), ds)
        row = {"seed": seed, "start": k, "seconds": record["fit_seconds"]}
        row.update({f"{p}_hat": params[p] for p in PARAMS})
        rows.append(row)
        print(f"seed {seed} start {k}: D {row['D_hat']:.5f} r {row['r_hat']:.5f} "
              f"({row['seconds']:.0f} s)", flush=True)
    return rows


def refit_check(seed, n_boot, long):
    """The same ``n_boot`` parametric resamples refitted with 500 and ``long`` L-BFGS
    iterations: log-scale replicates of each, (n_boot, 2) per setting, and the seconds."""
    ds = physreg.datasets.make_fisher_kpp_1d(random_state=seed)
    est = estimator(ds, seed)
    timed_fit(est, ds)
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


# the estimator's unconstrained scale: log for D (log link), natural for r (identity link)
TO_Z = {"D": (np.log, np.exp), "r": (lambda v: v, lambda v: v)}


def what_if(boot, bias, sd_opt):
    """Coverage of the bootstrap intervals of ``BOOT_CSV`` shifted by the bias study's
    per-seed bias (as ``pinn_bias_correction.py`` does), then widened for the optimisation
    noise by :func:`physreg.inference.widen_for_noise` (what ``confidence_intervals(...,
    bias_corrected=True, opt_noise=True)`` does), on the estimator's unconstrained scale.
    ``sd_opt[p]``: a number (the pooled noise of a few data sets: a diagnosis) or a Series
    by seed (each replicate's own, as the estimator measures it; replicates without one are
    left out)."""
    rows = boot.merge(bias[["seed", *(f"{p}_log_bias" for p in PARAMS)]], on="seed")
    per_seed = not np.isscalar(sd_opt[PARAMS[0]])
    if per_seed:
        rows = rows[rows.seed.isin(sd_opt[PARAMS[0]].index)]
    rows = rows.copy()
    names = [f"{m}_{n}" for m in ("bootstrap", "bootstrap_basic")
             for n in ("corrected", "corrected_opt_noise")]
    for p in PARAMS:
        fwd, back = TO_Z[p]
        hat = rows[f"{p}_hat"].to_numpy()
        # the bias study's bias is on the log scale: as a shift on the estimator's scale
        shift = fwd(hat) - fwd(hat * np.exp(-rows[f"{p}_log_bias"].to_numpy()))
        sd = sd_opt[p].loc[rows.seed].to_numpy() if per_seed else sd_opt[p]
        for m in ("bootstrap", "bootstrap_basic"):
            lo = fwd(rows[f"{p}_{m}_lo"].to_numpy()) - shift
            hi = fwd(rows[f"{p}_{m}_hi"].to_numpy()) - shift
            for n, (a, b) in (("corrected", (lo, hi)),
                              ("corrected_opt_noise", widen_for_noise(lo, hi, sd))):
                rows[f"{p}_{m}_{n}_lo"], rows[f"{p}_{m}_{n}_hi"] = back(a), back(b)
    cov = coverage_summary(rows.to_dict("records"), PARAMS, names)
    out = {"n_replicates": len(rows), "seeds": [int(v) for v in rows.seed]}
    out.update({f"{p}_{n}_{k}": cov[f"{p}_{n}_{k}"] for p in PARAMS for n in names
                for k in ("coverage", "mcse", "truth_above", "median_rel_width")})
    return out


def start_values(rows, boot):
    """Estimates by (seed, start): the CSV's fits, and start 0 of a seed from the bootstrap
    run (``random_state = seed``, the same fit) where the CSV has no start 0."""
    have0 = set(rows.seed[rows.start == 0])
    extra = boot[boot.seed.isin(set(rows.seed) - have0)]
    extra = pd.DataFrame({"seed": extra.seed, "start": 0,
                          **{f"{p}_hat": extra[f"{p}_hat"] for p in PARAMS}})
    return pd.concat([rows[["seed", "start", *(f"{p}_hat" for p in PARAMS)]], extra])


def summarize(refit=None, long=None):
    rows = pd.read_csv(CSV)
    out = {"n_fits": len(rows), "seeds": sorted(int(s) for s in rows.seed.unique()),
           "median_seconds_per_fit": float(rows.seconds.median())}
    boot = pd.read_csv(BOOT_CSV)
    bias = pd.read_csv(BIAS_CSV)
    vals = start_values(rows, boot)
    per_seed_sd = {}
    out["scale"] = "unconstrained: log for D, natural for r (r ~ 1: about relative)"
    for p in PARAMS:
        fwd = TO_Z[p][0]
        z = pd.Series(fwd(vals[f"{p}_hat"].to_numpy()), index=vals.index)
        g = z.groupby(vals.seed)
        # each replicate's own: the fit and three more (optimisation_noise(n_starts=3))
        own = z[vals.start < 4].groupby(vals.seed[vals.start < 4])
        per_seed_sd[p] = own.std(ddof=1)[own.count() == 4]
        dof = int((g.count() - 1).sum())
        within = float(np.sqrt(((z - g.transform("mean")) ** 2).sum() / dof))
        sd_rep = float(np.std(fwd(bias[f"{p}_hat"].to_numpy()), ddof=1))
        half = (fwd(boot[f"{p}_bootstrap_basic_hi"].to_numpy())
                - fwd(boot[f"{p}_bootstrap_basic_lo"].to_numpy())) / 2 / 1.959964
        sd_boot = float(np.sqrt(np.mean(half ** 2)))
        out[p] = {
            "opt_noise_sd": within, "opt_noise_dof": dof,
            "opt_noise_sd_by_seed": {str(s): float(v) for s, v in g.std(ddof=1).items()},
            "replicates_sd": sd_rep, "n_replicates": len(bias),
            "bootstrap_sd_rms": sd_boot, "n_bootstrap_replicates": len(boot),
            "boot_plus_opt_sd": float(np.hypot(sd_boot, within)),
            # the bias study's cold refits (fresh networks on solver data at the fit, 4 per
            # replicate): rms of their per-replicate sd (log scale)
            "cold_refit_sd_log_rms": float(np.sqrt(np.mean(bias[f"{p}_sim_sd_log"] ** 2))),
            "missing_sd": float(np.sqrt(max(sd_rep ** 2 - sd_boot ** 2, 0.0))),
        }
    out["what_if_pooled"] = what_if(boot, bias, {p: out[p]["opt_noise_sd"] for p in PARAMS})
    if len(per_seed_sd[PARAMS[0]]):
        out["per_replicate"] = what_if(boot, bias, per_seed_sd)
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
    ap.add_argument("--replicates", type=int, default=0, metavar="N",
                    help="instead of --seeds: the first N seeds of the bootstrap coverage run, "
                         "starts 1 .. n_starts - 1 (start 0 is that run's own fit): each "
                         "replicate's noise, as optimisation_noise(n_starts - 1) measures it")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="start no new seed after this many minutes (rerun to resume)")
    ap.add_argument("--shard", default="0/1", help="i/n: the seeds with index %% n == i")
    a = ap.parse_args()
    if a.n_starts < 2:
        ap.error("--n-starts must be >= 2 (a within-data-set sd needs two fits)")
    OUT.mkdir(exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    first = 0
    if a.replicates:      # the bootstrap run's seeds; start 0 is its fit (random_state = seed)
        seeds, first = sorted(int(s) for s in pd.read_csv(BOOT_CSV).seed)[: a.replicates], 1
    seeds = shard_of(seeds, a.shard)
    done = set()
    if CSV.exists():
        done = {(int(r.seed), int(r.start)) for r in pd.read_csv(CSV).itertuples()}
    t0 = time.perf_counter()
    for seed in seeds:
        ks = [k for k in range(first, a.n_starts) if (seed, k) not in done]
        if a.max_minutes is not None and time.perf_counter() - t0 > 60 * a.max_minutes:
            print(f"--max-minutes {a.max_minutes} reached; rerun to resume", flush=True)
            break
        if ks:
            rows = starts(seed, ks)
            append_csv(CSV, rows, list(rows[0]))
    refit = refit_check(seeds[0], a.refit_check, a.long) if a.refit_check else None
    print(json.dumps(summarize(refit, a.long), indent=1))


if __name__ == "__main__":
    main()
