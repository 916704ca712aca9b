"""Plots a user looks at after a fit: fitted field against the data, profiles, bootstrap.

Every function takes a fitted estimator (and data where needed), draws on a new or given
matplotlib figure and returns the figure; nothing is shown or saved implicitly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _interactive():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _interactive() -> bool:
    import sys

    return hasattr(sys, "ps1") or "ipykernel" in sys.modules


def plot_fit(est, obs, *, max_panels: int = 6, n_x: int = 200, fig=None):
    """Fitted density against the observations.

    1-D: one panel per observed time (up to ``max_panels``), data as points, fit as a line.
    2-D: maps of the fitted density at up to ``max_panels`` times with the sites overlaid,
    coloured by their observed value.
    """
    plt = _plt()
    o = est.obs_ if obs is None else _validated(est, obs)
    times = o.unique_times
    if len(times) > max_panels:
        times = times[np.linspace(0, len(times) - 1, max_panels).round().astype(int)]
    ncol = min(3, len(times))
    nrow = int(np.ceil(len(times) / ncol))
    fig = fig or plt.figure(figsize=(4.2 * ncol, 3.2 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    dom = est.model_.domain
    tu, xu = o.units.get("time") or "", o.units.get("x") or ""
    vu = o.units.get(o.target) or ""
    for ax, t in zip(axes, times, strict=False):
        sel = o.time == t
        if o.ndim == 1:
            xs = np.linspace(*dom.x, n_x)
            u = est.predict({"time": [t], "x": xs}).values[0]
            ax.plot(xs, u, color="C0", lw=2, label="fit")
            ax.plot(o.x[sel], o.value[sel], "o", ms=4, color="C1", label="data")
            ax.set_xlabel(f"x [{xu}]")
            ax.set_ylabel(f"{o.target} [{vu}]")
        else:
            xs = np.linspace(*dom.x, 80)
            ys = np.linspace(*dom.y, 60)
            u = est.predict({"time": [t], "y": ys, "x": xs}).values[0]
            im = ax.pcolormesh(xs, ys, u, shading="auto", cmap="viridis")
            fig.colorbar(im, ax=ax, label="fitted u")
            ax.scatter(o.x[sel], o.y[sel], c=o.value[sel], cmap="magma", edgecolor="w", s=25)
            ax.set_xlabel(f"x [{xu}]")
            ax.set_ylabel(f"y [{xu}]")
            ax.set_aspect("equal")
        ax.set_title(f"t = {t:g} {tu}")
    for ax in axes[len(times):]:
        ax.set_visible(False)
    if o.ndim == 1:
        axes[0].legend(frameon=False)
    fig.suptitle(f"{type(est).__name__}: fit against the data")
    return fig


def _validated(est, obs):
    from .data import validate_observations

    return validate_observations(obs, est.target, extras=est.extras)


def plot_profiles(est, *, fig=None):
    """Profile deviance curves with the chi-square threshold and the interval ends."""
    if not hasattr(est, "profiles_"):
        raise ValueError("No profiles yet: call confidence_intervals(method='profile') first.")
    plt = _plt()
    prof: xr.Dataset = est.profiles_
    names = [n for n in prof.param.values
             if np.isfinite(prof.deviance.sel(param=n)).sum() > 1]  # profiled ones only
    ncol = min(4, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig = fig or plt.figure(figsize=(3.6 * ncol, 3.0 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    thr = prof.attrs["threshold"]
    for ax, n in zip(axes, names, strict=False):
        v = prof.value.sel(param=n).values
        d = prof.deviance.sel(param=n).values
        ok = np.isfinite(d)
        ax.plot(v[ok], d[ok], "o-", ms=3)
        ax.axhline(thr, color="k", ls="--", lw=1, label=f"{prof.attrs['level']:.0%} threshold")
        ax.axvline(float(est.params_.sel(param=n)), color="C3", lw=1)
        ax.set_xlabel(f"{n} [{est.param_units_.get(n, '')}]")
        ax.set_ylabel("2 (nll - nll_min)")
        ax.set_ylim(bottom=-0.1 * thr)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(frameon=False, fontsize=8)
    return fig


def plot_bootstrap(est, *, fig=None, bins: int = 30):
    """Histograms of the bootstrap estimates with the point estimate."""
    if not hasattr(est, "bootstrap_"):
        raise ValueError("No bootstrap yet: call confidence_intervals(method='bootstrap') first.")
    plt = _plt()
    b = est.bootstrap_
    names = list(b.param.values)
    ncol = min(4, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig = fig or plt.figure(figsize=(3.6 * ncol, 3.0 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, n in zip(axes, names, strict=False):
        v = b.sel(param=n).values
        ax.hist(v[np.isfinite(v)], bins=bins, color="C0", alpha=0.7)
        ax.axvline(float(est.params_.sel(param=n)), color="C3", lw=1.5, label="estimate")
        ax.set_xlabel(f"{n} [{est.param_units_.get(n, '')}]")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle(f"bootstrap ({b.attrs.get('scheme', '')}, {b.sizes['replicate']} replicates)")
    return fig
