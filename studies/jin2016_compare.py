"""Jin et al. (2016) PC-3 scratch assays: solver MLE, physics-regularised PINN and solver-NUTS
posterior for D and lambda (= r), side by side (tracker issues 4 and 5).

Model (as the "sigma" variant of ``studies/jin2016_solver.py``): Fisher-KPP
du/dt = D u_xx + r u (1 - u/K), K = 1.7e-3 cells/um^2 fixed, no-flux ends on [0, 1900] um, the
t = 0 profile as initial condition (interpolated, left out of the likelihood), Gaussian
observations with one fitted sigma. For each initial density (12000, 16000, 20000 cells/well):

1. ``SolverEstimator``: MLE (4 starts) with profile-likelihood and Wald 95% intervals;
2. ``PINNEstimator`` with the same model and the options in ``PINN_OPTIONS`` (changed from the
   defaults: see the comment there), Wald (conditional, network held at its weights) and,
   unless ``--no-pinn-profile``, profile 95% intervals; loss history, convergence flag and
   residual are recorded;
3. ``MCMCEstimator(forward="solver")``: NUTS over (log D, r, log sigma) through the
   finite-volume solver (grid 128 cells, steps <= 1 h: see MCMC_GRID), the default
   weakly-informative prior of physreg.mcmc (a normal on the
   unconstrained scale centred in the parameter box, sd a quarter of its width, truncated to
   it), 4 chains x 1000 draws after 500 warm-up; posterior mean, sd, 95% equal-tailed credible
   interval, split R-hat and bulk/tail ESS.

Published Fisher-KPP estimates (Jin et al. 2016; the refit of Lagergren et al. 2020, no
intervals) come from ``physreg.datasets.load_jin2016_reference()``.

Writes studies/results/jin2016_compare.{json,md,png} (a run with ``--density`` updates that
density's entry and redraws the table and figure from all entries; ``--quick``, a smoke run
with tiny budgets, writes jin2016_compare_quick.* instead).

    cd /work/main && PHYSREG_DATA_HOME=/work/shared/data PYTHONPATH=. python studies/jin2016_compare.py
    # one density, or a smoke run:
    ... python studies/jin2016_compare.py --density 16000
    ... python studies/jin2016_compare.py --quick --density 12000
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import physreg
from physreg.likelihoods import Gaussian

OUT = Path(__file__).parent / "results"
K = 1.7e-3
DENSITIES = (12000, 16000, 20000)
PARAMS = ("D", "r")
MODEL = dict(competition="K", fixed={"K": K}, initial="first")

# PINN options changed from the defaults (lambda_pde=100, n_lbfgs=3000), from a sweep on 12000
# cells/well (solver MLE D = 252): with the defaults the network bends away from the PDE to fit
# the 152 observations (fitted sigma 7.9e-5 vs the solver's 9.3e-5) and D ends at 147 (-42%),
# still creeping up. In every run D collapses to ~50-70 during Adam (while the penalty weights
# ramp up, theta follows a network that is still a smoother of the data), also when started at
# the MLE, and climbs back slowly under L-BFGS. lambda_pde = 1e3: D 200 after 3000 L-BFGS
# iterations, 213 after 10000 (plateau); 3e3: 217 after 10000, still rising; 1e4: stuck at 77
# (worse data fit than the solver: stiff). On 20000 cells/well D falls to ~30 under Adam and
# was still rising by 16% over the last 1000 of 10000 L-BFGS iterations (D 893 vs the MLE's
# 1042): hence 20000 iterations. The defaults are refitted here for reference ("pinn_default"
# in the JSON; fit only).
PINN_OPTIONS = dict(lambda_pde=1000.0, n_lbfgs=20000)
# The PINN profile's grid runs to max_sd profile standard errors, the standard error measured
# from refits at +-2 conditional (Wald) standard errors (+-4 since session 10, when sides that
# stop short were also extended; the results here were computed before). With the default
# max_sd = 3 the profile of D on 12000 cells/well stops at deviance ~2.1-2.2 on both sides
# (open interval): it is flatter away from the estimate than near it. 6 points per side up to
# 6 standard errors (now the estimator's default; kept explicit here).
PINN_PROFILE = dict(max_sd=6.0, n_points=6)
PINN_QUICK = dict(n_adam=200, n_lbfgs=200, refit_lbfgs=50)
# The sampler's forward model runs on a coarser solver grid than the MLE (128 cells and time
# steps of at most 1 h instead of 256 cells and 200 steps): 2.6 ms instead of 20 ms per
# gradient, and the MLE moves by <= 0.2% of D, < 0.05% of r (recorded as "mle_at_mcmc_grid").
# At the default grid a 4-chain run costs hours here: the first warm-up window, with a unit
# mass matrix, needs trees of ~2^8 leapfrog steps (the posterior sd of r is ~1/150 of log D's).
MCMC_GRID = dict(grid=128, max_step=1.0)
MCMC_OPTIONS = dict(num_chains=4, num_warmup=500, num_samples=1000)
MCMC_QUICK = dict(num_chains=2, num_warmup=30, num_samples=30)


def _ci_dict(ci):
    return {p: [float(v) for v in ci.sel(param=p).values] for p in PARAMS}


def _params(est):
    return {str(n): float(v) for n, v in zip(est.params_.param.values, est.params_.values,
                                             strict=True)}


def _caught(fn):
    """Run fn() and return (result, seconds, warning messages)."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn()
    msgs = sorted({str(x.message).splitlines()[0] for x in w
                   if "field(init=False)" not in str(x.message)
                   and "QuasiMonteCarlo" not in str(x.message)})
    return out, time.perf_counter() - t0, msgs


def run_solver(ds, quick):
    est = physreg.SolverEstimator(likelihood=Gaussian(), n_starts=4, **MODEL)
    _, t_fit, w1 = _caught(lambda: est.fit(ds))
    out = {"estimate": _params(est), "nll": float(est.nll_), "converged": bool(est.converged_),
           "fit_seconds": t_fit}
    wald, t_w, w2 = _caught(lambda: est.confidence_intervals(method="wald"))
    out["wald"], out["wald_seconds"] = _ci_dict(wald), t_w
    if not quick:
        prof, t_p, w3 = _caught(lambda: est.confidence_intervals(method="profile",
                                                                 params=list(PARAMS)))
        out["profile"], out["profile_seconds"] = _ci_dict(prof), t_p
        w2 += w3
    out["warnings"] = w1 + w2
    return out


def run_pinn(ds, quick, options, profile):
    opts = {**options, **(PINN_QUICK if quick else {})}
    est = physreg.PINNEstimator(likelihood=Gaussian(), **MODEL, **opts)
    _, t_fit, w1 = _caught(lambda: est.fit(ds))
    h = est.history_
    n_adam = int((h.phase == "adam").sum())
    theta_d = h.theta.sel(param="D").values
    out = {"options": opts, "estimate": _params(est), "fit_seconds": t_fit,
           "converged": bool(est.converged_), "diverged": bool(est.diverged_),
           "loss": float(est.loss_), "residual_rms": float(est.residual_rms_),
           "n_iter": int(est.n_iter_), "n_adam": n_adam,
           "adam_end": {k: float(h[k].values[n_adam - 1]) for k in ("loss", "data", "pde", "ic",
                                                                    "bc")},
           "loss_last": float(h.loss.values[-1]),
           # drift of D over the last 10% of L-BFGS: a fit still moving has not converged
           "D_trajectory": [float(v) for v in theta_d[:: max(len(theta_d) // 20, 1)]],
           "D_last_10pct_rel_change": float(
               theta_d[-1] / theta_d[-max((len(theta_d) - n_adam) // 10, 1)] - 1)}
    # the PINN's data term at its estimate vs the solver's nll: mean per observation
    out["data_nll_per_obs"] = float(-np.mean(est.pinn_.loglik_terms()))
    wald, t_w, w2 = _caught(lambda: est.confidence_intervals(method="wald"))
    out["wald"], out["wald_seconds"] = _ci_dict(wald), t_w
    if profile and not quick:
        prof, t_p, w3 = _caught(lambda: est.confidence_intervals(
            method="profile", params=list(PARAMS), **PINN_PROFILE))
        out["profile"], out["profile_seconds"] = _ci_dict(prof), t_p
        out["profile_options"] = PINN_PROFILE
        out["profile_deviance"] = {p: [float(v) for v in est.profiles_.deviance.sel(
            param=p).values] for p in PARAMS}
        out["profile_values"] = {p: [float(v) for v in est.profiles_.value.sel(
            param=p).values] for p in PARAMS}
        w2 += w3
    out["warnings"] = w1 + w2
    return out


def run_mcmc(ds, quick):
    opts = MCMC_QUICK if quick else MCMC_OPTIONS
    est = physreg.MCMCEstimator(forward="solver", sampler="nuts", likelihood=Gaussian(),
                                random_state=0, **MODEL, **MCMC_GRID, **opts)
    _, t_fit, w1 = _caught(lambda: est.fit(ds))
    ci = est.confidence_intervals(level=0.95)
    post = est.posterior_["posterior"]
    stats = est.posterior_["sample_stats"]
    out = {"options": {**opts, **MCMC_GRID}, "fit_seconds": t_fit, "sampling_seconds": est.sampling_time_,
           "timing": {k: float(v) for k, v in est.result_.timing.items()},
           # the MLE through the sampler's solver grid (MCMCEstimator starts the chains there)
           "mle_at_mcmc_grid": {str(n): float(v) for n, v in zip(est.map_.param.values,
                                                                 est.map_.values, strict=True)},
           "credible95": _ci_dict(ci), "warnings": w1,
           "divergences": int(np.asarray(stats["diverging"]).sum())
           if "diverging" in stats else None}
    for p in list(PARAMS) + ["sigma"]:
        d = np.asarray(post[p].values).ravel()
        s = est.summary_[p]  # unconstrained scale (log D, r, log sigma): diagnostics only
        out[p] = {"mean": float(d.mean()), "sd": float(d.std(ddof=1)),
                  "median": float(np.median(d)),
                  "q2.5": float(np.quantile(d, 0.025)), "q97.5": float(np.quantile(d, 0.975)),
                  "r_hat": s["r_hat"], "ess_bulk": s["ess_bulk"], "ess_tail": s["ess_tail"]}
    out["ess_bulk_per_s"] = {p: out[p]["ess_bulk"] / max(est.sampling_time_, 1e-9)
                             for p in PARAMS}
    return out


def references(dens):
    out = {}
    for r in physreg.datasets.load_jin2016_reference():
        if r["initial_density"] == dens and r["model"] == "FKPP":
            out[r["source"].split("_")[0]] = {"D": float(r["D"]), "r": float(r["r"])}
    return out


def run_density(dens, a, previous):
    ds = physreg.datasets.load_jin2016(dens)
    entry = {"initial_density": dens, "references": references(dens), "host": platform.node(),
             "date": time.strftime("%Y-%m-%d %H:%M")}
    # parts skipped on the command line keep their results from an earlier run (with its date)
    for key, skipped in (("pinn_default", a.no_pinn_default), ("mcmc", a.no_mcmc)):
        if skipped and key in previous:
            entry[key] = {**previous[key], "date": previous[key].get("date",
                                                                     previous.get("date"))}
    print(f"== {dens} cells/well", flush=True)
    entry["solver"] = run_solver(ds, a.quick)
    s = entry["solver"]
    print(f"solver  D {s['estimate']['D']:.1f} r {s['estimate']['r']:.5f} "
          f"({s['fit_seconds']:.1f} s; intervals {s.get('profile', s['wald'])})", flush=True)
    pinn_opts = dict(PINN_OPTIONS)
    for kv in a.pinn_option:
        k, v = kv.split("=", 1)
        pinn_opts[k] = json.loads(v)
    if not a.no_pinn_default:
        d = run_pinn(ds, a.quick, {}, profile=False)
        d["rel_diff_to_solver"] = {q: d["estimate"][q] / s["estimate"][q] - 1 for q in PARAMS}
        entry["pinn_default"] = d
        print(f"pinn (defaults) D {d['estimate']['D']:.1f} r {d['estimate']['r']:.5f} "
              f"(rel. diff {d['rel_diff_to_solver']}; {d['fit_seconds']:.0f} s)", flush=True)
    entry["pinn"] = run_pinn(ds, a.quick, pinn_opts, not a.no_pinn_profile)
    p = entry["pinn"]
    p["rel_diff_to_solver"] = {q: p["estimate"][q] / s["estimate"][q] - 1 for q in PARAMS}
    print(f"pinn    D {p['estimate']['D']:.1f} r {p['estimate']['r']:.5f} "
          f"(rel. diff {p['rel_diff_to_solver']}; fit {p['fit_seconds']:.0f} s, converged "
          f"{p['converged']}, residual {p['residual_rms']:.2g}; wald {p['wald']}; "
          f"profile {p.get('profile')} in {p.get('profile_seconds', 0):.0f} s)", flush=True)
    if not a.no_mcmc:
        entry["mcmc"] = run_mcmc(ds, a.quick)
        m = entry["mcmc"]
        print(f"mcmc    D {m['D']['mean']:.1f} +- {m['D']['sd']:.1f} r {m['r']['mean']:.5f} +- "
              f"{m['r']['sd']:.5f} (R-hat {m['D']['r_hat']:.3f}/{m['r']['r_hat']:.3f}, ESS "
              f"{m['D']['ess_bulk']:.0f}/{m['r']['ess_bulk']:.0f}; {m['fit_seconds']:.0f} s)",
              flush=True)
    return entry


# ------------------------------------------------------------------ outputs ---------------
def fmt_ci(ci, f):
    return "-" if ci is None else f"[{f(ci[0])}, {f(ci[1])}]"


def markdown(results):
    fD = lambda v: f"{v:.0f}"  # noqa: E731
    fr = lambda v: f"{v:.4f}"  # noqa: E731
    lines = ["# Jin et al. (2016) PC-3 scratch assays: solver MLE, PINN, solver-NUTS posterior",
             "",
             "Fisher-KPP, K = 1.7e-3 cells/um^2 fixed, t = 0 profile as initial condition, "
             "Gaussian noise with one fitted sigma. D in um^2/h, r (lambda) in 1/h. Intervals "
             "95%: solver profile (Wald); PINN Wald (conditional on the network) and profile; "
             "posterior equal-tailed credible interval. PINN diff = PINN / solver MLE - 1. "
             "PINN profile: grid up to 6 profile standard errors (inf or 0: the deviance "
             "stays below the chi-square threshold there). Posterior: NUTS through the "
             "solver on a 128-cell grid (steps <= 1 h), default prior of physreg.mcmc.",
             "Written by `studies/jin2016_compare.py`.", ""]
    head = ("| density | param | solver MLE | profile CI | Wald CI | PINN | PINN diff | PINN Wald "
            "| PINN profile | posterior mean (sd) | 95% CrI | R-hat / ESS bulk | Jin 2016 "
            "| Lagergren 2020 |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for dens in sorted(results, key=int):
        e = results[dens]
        s, p, m = e["solver"], e["pinn"], e.get("mcmc")
        for q, f in (("D", fD), ("r", fr)):
            post = "-" if m is None else f"{f(m[q]['mean'])} ({f(m[q]['sd'])})"
            cri = "-" if m is None else fmt_ci([m[q]["q2.5"], m[q]["q97.5"]], f)
            diag = "-" if m is None else f"{m[q]['r_hat']:.3f} / {m[q]['ess_bulk']:.0f}"
            refs = e["references"]
            lines.append(
                f"| {dens} | {q} | {f(s['estimate'][q])} | "
                f"{fmt_ci(s.get('profile', {}).get(q), f)} | {fmt_ci(s['wald'][q], f)} | "
                f"{f(p['estimate'][q])} | {100 * p['rel_diff_to_solver'][q]:+.1f}% | "
                f"{fmt_ci(p['wald'][q], f)} | {fmt_ci(p.get('profile', {}).get(q), f)} | "
                f"{post} | {cri} | {diag} | "
                f"{f(refs['Jin2016'][q]) if 'Jin2016' in refs else '-'} | "
                f"{f(refs['Lagergren2020'][q]) if 'Lagergren2020' in refs else '-'} |")
    lines += ["", "Times (s, this machine, shared 2 cores):", "",
              "| density | solver fit | solver profile | PINN fit | PINN Wald | PINN profile "
              "| PINN converged_ | PINN residual RMS | MCMC total | MCMC compile / warm-up / "
              "draws | MCMC chains x draws (warm-up) | divergences |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for dens in sorted(results, key=int):
        e = results[dens]
        s, p, m = e["solver"], e["pinn"], e.get("mcmc")
        g = lambda d, k: f"{d[k]:.0f}" if d is not None and k in d else "-"  # noqa: E731
        mo = "-" if m is None else (f"{m['options']['num_chains']} x "
                                    f"{m['options']['num_samples']} "
                                    f"({m['options']['num_warmup']})")
        phases = "-" if m is None else " / ".join(
            f"{m['timing'][k]:.0f}" for k in ("compile_s", "warmup_s", "sampling_s"))
        lines.append(f"| {dens} | {s['fit_seconds']:.1f} | {g(s, 'profile_seconds')} | "
                     f"{p['fit_seconds']:.0f} | {p['wald_seconds']:.1f} | "
                     f"{g(p, 'profile_seconds')} | {p['converged']} | {p['residual_rms']:.2g} | "
                     f"{g(m, 'fit_seconds')} | "
                     f"{phases} | {mo} | "
                     f"{'-' if m is None else m['divergences']} |")
    dflt = [f"{d}: D {results[d]['pinn_default']['estimate']['D']:.0f} "
            f"({100 * results[d]['pinn_default']['rel_diff_to_solver']['D']:+.1f}%), r "
            f"{results[d]['pinn_default']['estimate']['r']:.4f} "
            f"({100 * results[d]['pinn_default']['rel_diff_to_solver']['r']:+.1f}%)"
            for d in sorted(results, key=int) if "pinn_default" in results[d]]
    if dflt:
        lines += ["", "PINN with default options (lambda_pde=100, n_lbfgs=3000), fit only: "
                  + "; ".join(dflt) + "."]
    opts = {d: results[d]["pinn"]["options"] for d in results}
    lines += ["", f"PINN options (changed from the defaults): {json.dumps(opts)}", ""]
    return "\n".join(lines)


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dens = sorted(results, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, q in zip(axes, PARAMS, strict=True):
        finite, open_ends = [], []
        for i, d in enumerate(dens):
            e = results[d]
            s, p, m = e["solver"], e["pinn"], e.get("mcmc")
            rows = [("solver MLE, profile CI", "C0", "o", -0.3, s["estimate"][q],
                     s.get("profile", s["wald"])[q]),
                    ("PINN, Wald CI", "C1", "s", -0.1, p["estimate"][q], p["wald"][q])]
            if m is not None:
                rows.append(("NUTS posterior mean, 95% CrI", "C2", "D", 0.1, m[q]["mean"],
                             [m[q]["q2.5"], m[q]["q97.5"]]))
            for label, c, mk, off, v, ci in rows:
                ax.errorbar(i + off, v, yerr=[[v - ci[0]], [ci[1] - v]], color=c, marker=mk,
                            capsize=4, ls="none", label=label if i == 0 else None)
                finite += [v, *ci]
            if "profile" in p:
                lo, hi = p["profile"][q]
                # a profile that never crosses the threshold is open (log scale: lower 0)
                lo_open, hi_open = not (np.isfinite(lo) and lo > 0), not np.isfinite(hi)
                finite += [x for x, o in ((lo, lo_open), (hi, hi_open)) if not o]
                open_ends.append((i - 0.04, p["estimate"][q], None if lo_open else lo,
                                  None if hi_open else hi, i == 0))
            for src, mk in (("Jin2016", "*"), ("Lagergren2020", "x")):
                if src in e["references"]:
                    v = e["references"][src][q]
                    finite.append(v)
                    ax.plot(i + 0.3, v, mk, color="k", ms=11 if mk == "*" else 8,
                            label=({"Jin2016": "Jin et al. 2016",
                                    "Lagergren2020": "Lagergren et al. 2020"}[src]
                                   if i == 0 else None))
        lo_y, hi_y = min(finite), max(finite)
        pad = 0.08 * (hi_y - lo_y)
        lo_y, hi_y = lo_y - pad, hi_y + pad
        for x, _v, lo, hi, first in open_ends:
            ax.vlines(x, lo if lo is not None else lo_y, hi if hi is not None else hi_y,
                      color="C1", ls="--", label="PINN, profile CI" if first else None)
            if lo is None:
                ax.plot(x, lo_y, "v", color="C1", ms=6)
            if hi is None:
                ax.plot(x, hi_y, "^", color="C1", ms=6)
        ax.set_ylim(lo_y, hi_y)
        ax.set_xticks(range(len(dens)), [f"{d}" for d in dens])
        ax.set_xlabel("initial density (cells/well)")
        ax.set_ylabel("D (um^2/h)" if q == "D" else "lambda (1/h)")
        ax.set_title("D" if q == "D" else "lambda (r)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    any_open = any(not (np.isfinite(v) and v > 0) for e in results.values()
                   for v in np.ravel(list(e["pinn"].get("profile", {}).values())))
    fig.suptitle("Jin et al. 2016 PC-3 scratch assays, Fisher-KPP (K fixed): estimates and 95% "
                 "intervals" + ("\n(triangles: PINN profile open beyond the axis)" if any_open
                                else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--density", type=int, action="append", choices=DENSITIES,
                    help="run this density only (repeatable); default: all three")
    ap.add_argument("--quick", action="store_true", help="smoke run with tiny budgets")
    ap.add_argument("--no-pinn-profile", action="store_true",
                    help="skip the PINN profile intervals (several minutes per density)")
    ap.add_argument("--no-pinn-default", action="store_true",
                    help="skip the reference PINN fit with default options (an earlier "
                         "run's result for the density is kept)")
    ap.add_argument("--no-mcmc", action="store_true",
                    help="skip the posterior (an earlier run's result for the density is kept)")
    ap.add_argument("--redraw", action="store_true",
                    help="only rewrite the table and figure from the JSON")
    ap.add_argument("--pinn-option", action="append", default=[], metavar="NAME=JSON",
                    help="override a PINNEstimator option, e.g. lambda_pde=100.0")
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    stem = "jin2016_compare_quick" if a.quick else "jin2016_compare"
    path = OUT / f"{stem}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for dens in () if a.redraw else a.density or DENSITIES:
        t0 = time.perf_counter()
        entry = run_density(dens, a, results.get(str(dens), {}))
        entry["total_seconds"] = time.perf_counter() - t0
        results[str(dens)] = entry
        path.write_text(json.dumps(results, indent=1))
    (OUT / f"{stem}.md").write_text(markdown(results))
    figure(results, OUT / f"{stem}.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
