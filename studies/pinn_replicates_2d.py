"""PINN on replicates of the 2-D covariate + sparse Poisson case, with the bias correction from
expected counts: how often are the coefficients within 10%, and how far from the solver MLE?

``studies/pinn_fit_2d.py`` meets "coefficients within 10%" on the bundled data set with
``correct_bias(n_sim=6, data="expected")``; one data set says little (the solver MLE itself is
18% off in r_elevation there). Each replicate here: fresh data from
``physreg.datasets.make_fisher_kpp_2d(random_state=seed)`` (60 sites x 5 times, Poisson counts
with kappa = 10 known, a fresh covariate field), the PINN with the heat-kernel ansatz and the
estimator's defaults (``random_state=seed``), then ``correct_bias(n_sim=--n-sim,
data="expected")``. The solver MLE of the same seed is read from
``studies/results/replicates_solver_2d.csv`` (``studies/replicates_solver_2d.py``, seeds from
2000).

Rows are appended to ``studies/results/pinn_replicates_2d.csv`` (resumable; ``--shard i/n``
splits the seeds between processes); the summary (relative bias with its Monte Carlo s.e.,
RMSE and the share within 10% of the truth, for the fit, the corrected fit and the solver on
the same seeds) goes to ``pinn_replicates_2d_summary.json``.

    python studies/pinn_replicates_2d.py --n-rep 10 --n-sim 4 [--shard 0/2] [--max-minutes M]

Measured: seeds 2000-2019, 20 replicates, 404 s median each (102 s the fit) with two
processes. Seeds 2000-2008 in session 17, 2009-2019 in session 18 (``--n-rep 20 --n-sim 4
--shard i/2``).

| relative error | D bias / RMSE | r | r_elevation | gamma |
|---|---|---|---|---|
| PINN fit | -28.3% / 36.0% | +0.1% / 9.5% | -25.0% / 35.5% | +0.3% / 21.4% |
| corrected (expected counts, 4 refits) | -12.5% / 31.5% | +3.8% / 12.5% | -10.3% / 28.9% | +7.3% / 24.3% |
| solver MLE, same seeds | -5.0% / 13.6% | +4.2% / 10.0% | +2.9% / 16.4% | +6.4% / 15.1% |

- All four coefficients within 10% of the truth: fit 1 of 20, corrected 3 of 20, solver 7.
- RMSE ratios to the solver, corrected: 2.32 (D), 1.24 (r), 1.77 (r_elevation), 1.61
  (gamma); without seed 2012: 1.66, 1.18, 1.17, 1.20.
- Seed 2012's fit collapsed: D 0.021, width 5.0, r_elevation 0 (growth in place from a wide
  introduction), the correction leaving it there. Refits of those data (``--probe 2012
  --random-states 2012,7``, then ``--n-restarts 4``; ``pinn_replicates_2d_probe.jsonl``):
  the collapse has the lower final loss (1.25; 2.82 and 2.21 for the two fits that did not
  collapse, D 0.71 and 0.68), residual rms 0.001 against 0.06-0.07. Four Adam restarts
  avoided it, the collapsed run's loss after Adam (1.279) not being the lowest of the four
  (1.274). ``fit`` now warns on such fits; the summary's ``collapsed_seeds`` are those the
  same rule flags.
- The MC s.e. of each bias is 2-7%.

Two rounds of 2 refits, the same cost (``--n-rep 20 --n-sim 2 --n-rounds 2 --shard i/2``,
317 s median; ``pinn_replicates_2d_rounds2{.csv,_summary.json}``):

| relative error | D bias / RMSE | r | r_elevation | gamma |
|---|---|---|---|---|
| round 1 (2 refits) | -12.2% / 31.9% | +4.2% / 13.2% | -10.1% / 29.2% | +8.2% / 25.5% |
| round 2 | -5.6% / 42.9% | +5.4% / 15.0% | -2.2% / 28.5% | +9.6% / 26.6% |

- Round 1 with 2 refits lands where 4 refits did: the expected counts leave little noise.
- Round 2 takes the biases to the solver's (D -5.0%, r_elevation +2.9%), and r_elevation's
  RMSE ratio without seed 2012 to 1.12, but amplifies the overshoots: seed 2011's D 1.49 ->
  2.37 (solver 1.06), seed 2015's 0.96 -> 1.20. D's RMSE ratio is 3.15 (2.69 without 2012).
- All four within 10%: 3 of 20 after either round.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings
from pathlib import Path

import numpy as np
from pinn_bias_correction import _rel_errors, _rows_by_seed  # same folder (run as a script)
from pinn_vs_solver import append_csv, pending_seeds

import physreg
from physreg.likelihoods import Poisson
from physreg.pinn._estimator import diffusion_length, grows_in_place

OUT = Path(__file__).parent / "results"
CSV = OUT / "pinn_replicates_2d.csv"
SOLVER_CSV = OUT / "replicates_solver_2d.csv"
PARAMS = ("D", "r", "r_elevation", "gamma")
IC = ("ic_x", "ic_y", "ic_width", "ic_mass")


def csv_path(n_rounds):
    """The rows of one round (the default) in ``pinn_replicates_2d.csv``, of ``R`` rounds in
    ``pinn_replicates_2d_roundsR.csv``."""
    return CSV if n_rounds == 1 else OUT / f"pinn_replicates_2d_rounds{n_rounds}.csv"


def _estimator(seed, random_state=None, n_restarts=1):
    """Seed ``seed``'s data, truth and the PINN of this study (``random_state`` = the seed
    unless given)."""
    obs, cov = physreg.datasets.make_fisher_kpp_2d(random_state=seed)
    truth = physreg.datasets.truth_of(obs)
    est = physreg.PINNEstimator(likelihood=Poisson(kappa=truth["kappa"]),
                                growth_covariates=("elevation",), initial="gaussian",
                                t0=float(obs.attrs.get("t0", 0.0)), hard_ic="heat",
                                n_restarts=n_restarts,
                                random_state=seed if random_state is None else random_state)
    return obs, cov, truth, est


def probe(seed, random_states, n_restarts=1):
    """Fit seed ``seed``'s data once per ``random_state`` (``n_restarts`` Adam restarts each):
    the final loss, each restart's loss after Adam, and the estimates, appended to
    ``pinn_replicates_2d_probe.jsonl``. Does a collapsed fit have the lower loss?"""
    for rs in random_states:
        obs, cov, truth, est = _estimator(seed, rs, n_restarts)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(obs, cov)
        rec = {"seed": seed, "random_state": rs, "n_restarts": n_restarts,
               "seconds": time.perf_counter() - t0, "loss": float(est.loss_),
               "restart_losses": est.history_.attrs["restart_losses"],
               "residual_rms": float(est.residual_rms_), "diverged": bool(est.diverged_),
               **{p: float(est.params_.sel(param=p)) for p in (*PARAMS, *IC)}}
        with open(OUT / "pinn_replicates_2d_probe.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def replicate(seed, n_sim, n_rounds=1):
    """Seed ``seed``: the PINN's fit and its correction from expected counts, with the truth.
    With ``n_rounds > 1`` the first round's correction is kept too (``{p}_round1``)."""
    obs, cov, truth, est = _estimator(seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(obs, cov)
        t_fit = time.perf_counter() - t0
        est.correct_bias(n_sim=n_sim, n_rounds=n_rounds, data="expected")
    row = {"seed": seed, "n_sim": n_sim, "fit_seconds": t_fit,
           "seconds": time.perf_counter() - t0, "diverged": bool(est.diverged_),
           "n_failed": est.bias_.attrs["n_failed"]}
    for p in (*PARAMS, *IC):
        row[f"{p}_true"] = truth[p]
        row[f"{p}_hat"] = float(est.params_.sel(param=p))
        row[f"{p}_corrected"] = float(est.params_corrected_.sel(param=p))
    if n_rounds > 1:
        first = est._params_at(np.asarray(est.z_) - est.bias_rounds_.values[0], "round 1")
        for p in (*PARAMS, *IC):
            row[f"{p}_round1"] = float(first.sel(param=p))
    row["D_refit_log_sd"] = (float(np.std(np.log(est.bias_refits_.sel(param="D").values),
                                          ddof=1)) if n_sim > 1 else float("nan"))
    return row


def _time_span():
    """The replicates' observed span from t0 (``make_fisher_kpp_2d``: the same design for
    every seed)."""
    obs, _ = physreg.datasets.make_fisher_kpp_2d(random_state=0)
    return float(obs.time.max()) - float(obs.attrs.get("t0", 0.0))


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def summarize(n_rounds=1):
    """Errors of the fit, the corrected fit (after round 1 too, with ``n_rounds > 1``) and the
    solver MLE (same seeds) against the truth, to ``<csv stem>_summary.json``."""
    path = csv_path(n_rounds)
    rows = _read(path)
    solver = _rows_by_seed(SOLVER_CSV)
    common = [r for r in rows if int(r["seed"]) in solver]
    out = {"n_replicates": len(rows), "seeds": [int(r["seed"]) for r in rows],
           "n_sim": sorted({int(r["n_sim"]) for r in rows}),
           "median_seconds": float(np.median([float(r["seconds"]) for r in rows])),
           "median_fit_seconds": float(np.median([float(r["fit_seconds"]) for r in rows])),
           "n_with_solver": len(common)}
    sets = {"fit": (rows, lambda r, p: r[f"{p}_hat"]),
            "corrected": (rows, lambda r, p: r[f"{p}_corrected"]),
            "corrected_common": (common, lambda r, p: r[f"{p}_corrected"]),
            "solver": (common, lambda r, p: solver[int(r["seed"])][f"{p}_hat"])}
    if n_rounds > 1:
        sets["round1"] = (rows, lambda r, p: r[f"{p}_round1"])
    # fits the estimator's spread check flags (growth in place from a wide introduction;
    # it uses the fit alone, not the truth); the RMSE ratios are given without them too
    span = _time_span()
    collapsed = {int(r["seed"]) for r in rows
                 if grows_in_place(diffusion_length(float(r["D_hat"]), span, 2),
                                   float(r["ic_width_hat"]))}
    out["collapsed_seeds"] = sorted(collapsed)
    for p in PARAMS:
        for name, (rs, get) in sets.items():
            if len(rs) < 2:
                continue
            est = np.array([float(get(r, p)) for r in rs])
            true = np.array([float(r[f"{p}_true"]) for r in rs])
            _rel_errors(out, f"{p}_{name}", est, true)
            out[f"{p}_{name}_within_10pct"] = float(np.mean(np.abs(est / true - 1) <= 0.10))
            out[f"{p}_{name}_median_abs_rel_error"] = float(np.median(np.abs(est / true - 1)))
        for name in ("fit", "corrected", "round1"):
            if name not in sets or len(common) < 2:
                continue
            for tag, rs in (("", common),
                            ("_without_collapsed",
                             [r for r in common if int(r["seed"]) not in collapsed])):
                true = np.array([float(r[f"{p}_true"]) for r in rs])
                rmse = [np.sqrt(np.mean((np.array([float(get(r, p)) for r in rs]) / true - 1)
                                        ** 2)) for get in (sets[name][1], sets["solver"][1])]
                out[f"{p}_{name}_rmse_ratio_to_solver{tag}"] = float(rmse[0] / rmse[1])
    for name, (rs, get) in sets.items():
        if len(rs) >= 2:        # every coefficient of a replicate within 10% at once
            out[f"all_{name}_within_10pct"] = float(np.mean([
                all(abs(float(get(r, p)) / float(r[f"{p}_true"]) - 1) <= 0.10 for p in PARAMS)
                for r in rs]))
    out["n_rounds"] = n_rounds
    (OUT / f"{path.stem}_summary.json").write_text(json.dumps(out, indent=1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-rep", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=2000,
                    help="the solver replicates' first seed (replicates_solver_2d.py)")
    ap.add_argument("--n-sim", type=int, default=4, help="refits of the expected counts")
    ap.add_argument("--n-rounds", type=int, default=1,
                    help="rounds of the correction (rows of R > 1 in *_roundsR.csv)")
    ap.add_argument("--shard", default="0/1", help="i/n: the seeds with index %% n == i")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="start no new replicate after this many minutes (rerun to resume)")
    ap.add_argument("--probe", type=int, default=None, metavar="SEED",
                    help="only refit this seed's data with --random-states (see probe())")
    ap.add_argument("--random-states", default="", help="comma-separated, for --probe")
    ap.add_argument("--n-restarts", type=int, default=1, help="for --probe")
    a = ap.parse_args()
    if a.probe is not None:
        states = [int(x) for x in a.random_states.split(",") if x] or [a.probe]
        probe(a.probe, states, a.n_restarts)
        return
    if a.n_sim < 1 or a.n_rounds < 1:
        ap.error("--n-sim and --n-rounds must be >= 1")
    OUT.mkdir(exist_ok=True)
    path = csv_path(a.n_rounds)
    for seed in pending_seeds(path, a.first_seed, a.n_rep, a.shard, a.max_minutes):
        row = replicate(seed, a.n_sim, a.n_rounds)
        append_csv(path, [row], list(row))
        print(f"seed {seed}: {row['seconds']:.0f} s  " + "  ".join(
            f"{p} {row[f'{p}_hat']:.3f} -> {row[f'{p}_corrected']:.3f}" for p in PARAMS),
            flush=True)
    print(json.dumps(summarize(a.n_rounds), indent=1))


if __name__ == "__main__":
    main()
