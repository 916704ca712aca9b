"""Command line: ``physreg demo`` and ``physreg fit FILE.nc``."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

app = typer.Typer(help="physreg: fit reaction-diffusion models to xarray/netCDF data.",
                  no_args_is_help=True, add_completion=False)


def _estimator(method: str, **kw):
    import physreg

    classes = {"solver": physreg.SolverEstimator, "pinn": physreg.PINNEstimator}
    if method not in classes:
        raise typer.BadParameter(f"unknown method {method!r}; use 'solver' or 'pinn'.")
    cls = classes[method]
    unknown = sorted(set(kw) - set(cls().get_params()))
    if unknown:
        raise typer.BadParameter(f"{cls.__name__} has no argument {unknown}; valid: "
                                 f"{sorted(cls().get_params())}.")
    return cls(**kw)


def _options(items) -> dict:
    """``NAME=VALUE`` strings -> estimator arguments (values parsed as Python literals)."""
    import ast

    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"--option expects NAME=VALUE, got {item!r}.")
        try:
            out[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[name.strip()] = value.strip()
    return out


def _table(est, ci, truth=None, params=None) -> str:
    params = est.params_ if params is None else params
    rows = [f"{'param':<10} {'truth':>10} {'estimate':>10} {'lower':>10} {'upper':>10}  units"]
    for n in params.param.values:
        v = float(params.sel(param=n))
        t = truth.get(str(n), np.nan) if truth else np.nan
        ends = ["nan", "nan"]
        if n in ci.param.values:
            vals = ci.sel(param=n).values
            flags = (ci["open"].sel(param=n).values if "open" in ci.coords
                     else np.zeros(2, bool))
            # an open end (the profile never reached the threshold there) is not a number
            ends = [("open" if o else f"{e:.4g}") for e, o in zip(vals, flags, strict=True)]
        u = est.param_units_.get(str(n), "")
        rows.append(f"{n:<10} {t:>10.4g} {v:>10.4g} {ends[0]:>10} {ends[1]:>10}  {u}")
    return "\n".join(rows)


def _as_dict(a) -> dict:
    """A DataArray over ``param`` as ``{name: float}``."""
    return {str(n): float(a.sel(param=n)) for n in a.param.values}


def _write_outputs(est, obs, ci, out: Path, extra: dict, verbose: bool):
    from physreg import plotting

    out.mkdir(parents=True, exist_ok=True)
    res = {
        "estimator": type(est).__name__,
        "params": _as_dict(est.params_),
        "units": dict(est.param_units_),
        "interval": {str(n): [float(v) for v in ci.sel(param=n).values]
                     for n in ci.param.values},
        "interval_method": ci.attrs["method"],
        "open_ends": [e for e in ci.attrs.get("open_ends", "").split(",") if e],
        "level": ci.attrs["level"],
        **extra,
    }
    (out / "estimates.json").write_text(json.dumps(res, indent=2))
    ci.to_dataset(name="interval").to_netcdf(out / "intervals.nc", engine="h5netcdf")
    plotting.plot_fit(est, obs).savefig(out / "fit.png", dpi=110)
    if hasattr(est, "profiles_"):
        plotting.plot_profiles(est).savefig(out / "profiles.png", dpi=110)
    if hasattr(est, "bootstrap_"):
        plotting.plot_bootstrap(est).savefig(out / "bootstrap.png", dpi=110)
    if verbose:
        typer.echo(f"wrote {out}/estimates.json, intervals.nc and figures")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the results and figures.")] = Path(
        "physreg-demo"),
    interval: Annotated[str, typer.Option(help="profile, wald or bootstrap.")] = "profile",
):
    """Fit the bundled 1-D synthetic dataset and print truth, estimates, intervals and time."""
    from physreg import datasets

    ds = datasets.load_example("fkpp1d_gaussian")
    truth = datasets.truth_of(ds)
    typer.echo("physreg demo: Fisher-KPP, 1-D, Gaussian noise; solver maximum likelihood")
    typer.echo(f"data: {dict(ds.sizes)}  (bundled file data/fkpp1d_gaussian.nc)")
    est = _estimator("solver", initial="gaussian", t0=float(ds.attrs.get("t0", 0.0)),
                     grid=128, verbose=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(ds)
        t_fit = time.perf_counter() - t0
        kw = {"params": ["D", "r", "gamma"]} if interval == "profile" else {}
        ci = est.confidence_intervals(method=interval, **kw)
    t_all = time.perf_counter() - t0
    typer.echo(_table(est, ci, truth))
    typer.echo(f"\n{ci.attrs['method']} {ci.attrs['level']:.0%} intervals; fit {t_fit:.1f} s, "
               f"fit + intervals {t_all:.1f} s (including JAX compilation)")
    _write_outputs(est, ds, ci, out, {"truth": truth, "fit_seconds": t_fit,
                                      "total_seconds": t_all}, True)


@app.command()
def fit(
    path: Annotated[Path, typer.Argument(help="netCDF file with the observations.")],
    target: Annotated[str, typer.Option(help="Observed variable.")] = "density",
    method: Annotated[str, typer.Option(help="solver or pinn.")] = "solver",
    likelihood: Annotated[str, typer.Option(help="gaussian, lognormal, poisson, negbin, "
                                                 "binomial, bernoulli.")] = "gaussian",
    initial: Annotated[str, typer.Option(help="first (first time slice) or gaussian.")] = "first",
    covariates: Annotated[Path | None, typer.Option(help="netCDF file of covariates.")] = None,
    diffusion_covariate: Annotated[list[str] | None, typer.Option(help="covariate in log D.")] = None,
    growth_covariate: Annotated[list[str] | None, typer.Option(help="covariate in r.")] = None,
    competition: Annotated[str, typer.Option(help="gamma, K or none.")] = "gamma",
    fix: Annotated[list[str] | None, typer.Option(help="NAME=VALUE, repeatable.")] = None,
    t0: Annotated[float | None, typer.Option(help="Introduction date (initial=gaussian).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        help="NAME=VALUE: another estimator argument (a Python literal), repeatable; e.g. "
             "--method pinn --option n_adam=5000 --option width=48.")] = None,
    interval: Annotated[str, typer.Option(help="profile, wald or bootstrap.")] = "profile",
    bias_correction: Annotated[int, typer.Option(
        help="--method pinn: remove the PINN's bias, estimated by this many cold refits on "
             "data simulated by the solver at the fit (PINNEstimator.correct_bias); "
             "estimates and intervals are then the corrected ones. 0: off.")] = 0,
    bias_rounds: Annotated[int, typer.Option(
        help="with --bias-correction: rounds of the iterated correction, each simulating at "
             "the previous round's corrected estimate (PINNEstimator.correct_bias "
             "n_rounds).")] = 1,
    bias_data: Annotated[str, typer.Option(
        help="with --bias-correction: 'simulated' (refit noisy draws at the fit) or "
             "'expected' (refit the noise-free expected values: the refits differ only by "
             "the PINN's random numbers; PINNEstimator.correct_bias data).")] = "simulated",
    opt_noise: Annotated[int, typer.Option(
        help="--method pinn: widen the intervals for the PINN's optimisation noise, measured "
             "by this many cold refits of the same data (PINNEstimator.optimisation_noise). "
             "0: off.")] = 0,
    level: float = 0.95,
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("physreg-fit"),
    seed: int = 0,
):
    """Fit a user's netCDF file; write estimates, intervals and figures."""
    import xarray as xr

    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist.")
    ds = xr.open_dataset(path, engine="h5netcdf").load()
    cov = xr.open_dataset(covariates, engine="h5netcdf").load() if covariates else None
    fixed = {}
    for item in fix or []:
        name, _, value = item.partition("=")
        try:
            fixed[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--fix expects NAME=VALUE, got {item!r}.") from None
    extra = _options(option)
    if bias_correction < 0 or (bias_correction and method != "pinn"):
        raise typer.BadParameter("--bias-correction takes a number of refits >= 0, and only "
                                 "with --method pinn.")
    if bias_rounds < 1 or (bias_rounds > 1 and not bias_correction):
        raise typer.BadParameter("--bias-rounds takes a number of rounds >= 1, and more than "
                                 "one only with --bias-correction.")
    if bias_data not in ("simulated", "expected") or (bias_data != "simulated"
                                                       and not bias_correction):
        raise typer.BadParameter("--bias-data is 'simulated' or 'expected', and 'expected' "
                                 "only with --bias-correction.")
    if opt_noise < 0 or (opt_noise and method != "pinn"):
        raise typer.BadParameter("--opt-noise takes a number of refits >= 0, and only with "
                                 "--method pinn.")
    if t0 is not None:
        extra["t0"] = t0
    est = _estimator(method, target=target, likelihood=likelihood, initial=initial,
                     diffusion_covariates=tuple(diffusion_covariate or ()),
                     growth_covariates=tuple(growth_covariate or ()),
                     competition=None if competition == "none" else competition,
                     fixed=fixed or None, random_state=seed, verbose=True, **extra)
    t0 = time.perf_counter()
    est.fit(ds, covariates=cov)
    if bias_correction:
        est.correct_bias(n_sim=bias_correction, n_rounds=bias_rounds, data=bias_data)
    if opt_noise:
        est.optimisation_noise(n_starts=opt_noise)
    ci = est.confidence_intervals(level=level, method=interval,
                                  **({"bias_corrected": True} if bias_correction else {}),
                                  **({"opt_noise": True} if opt_noise else {}))
    elapsed = time.perf_counter() - t0
    written = {"seconds": elapsed, "file": str(path)}
    params = None
    if bias_correction:
        params = est.params_corrected_
        written.update(params=_as_dict(params), params_uncorrected=_as_dict(est.params_),
                       bias={**{k: est.bias_.attrs[k]
                                for k in ("scale", "n_sim", "n_rounds", "data")},
                             "values": _as_dict(est.bias_)})
    if opt_noise:
        written.update(opt_noise={"scale": est.opt_noise_.attrs["scale"], "n_starts": opt_noise,
                                  "sd": _as_dict(est.opt_noise_)})
    typer.echo(_table(est, ci, params=params))
    typer.echo(f"\n{ci.attrs['method']} intervals at {level:.0%}; {elapsed:.1f} s")
    _write_outputs(est, ds, ci, out, written, True)


if __name__ == "__main__":  # pragma: no cover
    app()
