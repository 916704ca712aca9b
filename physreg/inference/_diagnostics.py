"""Convergence diagnostics (rank-normalised split R-hat, bulk and tail ESS) and labelling
of draws as an `xarray.DataTree`.

All diagnostics are plain NumPy on arrays of shape `(chain, draw)` (one parameter) or
`(chain, draw, p)`, following Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat", Bayesian Analysis
16(2), the definitions Stan and ArviZ use:

- split chains: each chain's first and second halves become two chains;
- rank normalisation: pooled average ranks `r`, then `Phi^-1((r - 3/8) / (S + 1/4))`;
- R-hat: the maximum of the split R-hat of the rank-normalised draws (bulk) and of the
  rank-normalised folded draws `|x - median|` (tails);
- ESS: `M N / tau` with `tau = -1 + 2 sum_t rho_t` truncated by Geyer's initial
  monotone positive-pair sequence, autocorrelations from FFT pooled over chains with
  the multi-chain variance estimate `var+` (Stan's "ess");
- bulk ESS: ESS of the rank-normalised split chains;
- tail ESS: the minimum of the ESS of the split-chain indicators `I(x <= q05)` and
  `I(x <= q95)`;
- MCSE of the mean: `sd / sqrt(ESS_mean)` with `ESS_mean` the ESS of the raw split chains.

Public names: :func:`rhat`, :func:`ess`, :func:`ess_bulk`, :func:`ess_tail`,
:func:`mcse_mean`, :func:`summarize`, :func:`format_summary`,
:func:`check_convergence`, :func:`to_datatree`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "rhat",
    "ess",
    "ess_bulk",
    "ess_tail",
    "mcse_mean",
    "summarize",
    "format_summary",
    "check_convergence",
    "to_datatree",
]

SUMMARY_COLUMNS = ("mean", "sd", "q5", "q50", "q95", "mcse_mean", "ess_bulk", "ess_tail", "r_hat")


# --------------------------------------------------------------------------------------
# Core (one parameter, shape (chain, draw))
# --------------------------------------------------------------------------------------


def _as_chains(x, name="x") -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"`{name}` must have shape (chain, draw). Got shape {x.shape} instead.")
    return x


def _split_chains(x: np.ndarray) -> np.ndarray:
    """(m, n) -> (2m, n // 2): halves of each chain (a middle draw of odd n is dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _rank_normalize(x: np.ndarray) -> np.ndarray:
    r = stats.rankdata(x, method="average", axis=None).reshape(x.shape)
    return stats.norm.ppf((r - 0.375) / (x.size + 0.25))


def _autocov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance (divided by n) of each row, lags 0..n-1, by FFT."""
    n = x.shape[1]
    centered = x - x.mean(axis=1, keepdims=True)
    nfft = int(2 ** np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centered, n=nfft, axis=1)
    return np.fft.irfft(f * np.conjugate(f), n=nfft, axis=1)[:, :n] / n


def _rhat_basic(x: np.ndarray) -> float:
    m, n = x.shape
    if m < 2 or n < 2 or not np.all(np.isfinite(x)):
        return np.nan
    w = np.mean(np.var(x, axis=1, ddof=1))
    b = n * np.var(np.mean(x, axis=1), ddof=1)
    if w == 0:
        return np.nan
    return float(np.sqrt(((n - 1) / n * w + b / n) / w))


def _ess_basic(x: np.ndarray) -> float:
    """Multi-chain ESS of (m, n) draws (Geyer initial monotone sequence, as Stan)."""
    m, n = x.shape
    if n < 4 or not np.all(np.isfinite(x)):
        return np.nan
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus += np.var(np.mean(x, axis=1), ddof=1)
    if not var_plus > 0:
        return np.nan
    rho = np.zeros(n)
    rho_even = 1.0
    rho[0] = 1.0
    rho_odd = 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    rho[1] = rho_odd
    # Initial positive sequence: sum pairs (rho_2k + rho_2k+1) while positive.
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - np.mean(acov[:, t + 1])) / var_plus
        rho_odd = 1.0 - (mean_var - np.mean(acov[:, t + 2])) / var_plus
        if rho_even + rho_odd >= 0.0:
            rho[t + 1] = rho_even
            rho[t + 2] = rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0.0:  # improves the estimate for antithetic chains
        rho[max_t + 1] = rho_even
    # Initial monotone sequence: pair sums must not increase.
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    tau = max(tau, 1.0 / np.log10(m * n))
    return float(m * n / tau)


# --------------------------------------------------------------------------------------
# Public per-parameter diagnostics
# --------------------------------------------------------------------------------------


def _per_param(fn, samples) -> np.ndarray | float:
    x = np.asarray(samples, dtype=float)
    if x.ndim == 3:
        return np.array([fn(x[:, :, j]) for j in range(x.shape[2])])
    return fn(_as_chains(x, "samples"))


def rhat(samples) -> np.ndarray | float:
    """Rank-normalised split R-hat (Vehtari et al. 2021): max of bulk and folded.

    **Arguments:** `samples`: `(chain, draw)` or `(chain, draw, p)`.
    **Returns:** a float, or `(p,)` array; NaN when undefined (constant or non-finite
    draws, fewer than 4 draws).
    """

    def one(x):
        s = _split_chains(x)
        if s.shape[1] < 2:
            return np.nan
        bulk = _rhat_basic(_rank_normalize(s))
        folded = _rhat_basic(_rank_normalize(np.abs(s - np.median(s))))
        return float(np.nanmax([bulk, folded])) if np.isfinite([bulk, folded]).any() else np.nan

    return _per_param(one, samples)


def ess(samples, *, split: bool = True) -> np.ndarray | float:
    """ESS of the raw draws (the ESS relevant to the MCSE of the mean).

    **Arguments:** `samples`: `(chain, draw)` or `(chain, draw, p)`; `split`: split
    chains first (default, as ArviZ's `method="mean"`).
    """
    return _per_param(lambda x: _ess_basic(_split_chains(x) if split else x), samples)


def ess_bulk(samples) -> np.ndarray | float:
    """Bulk ESS: ESS of the rank-normalised split chains."""
    return _per_param(lambda x: _ess_basic(_rank_normalize(_split_chains(x))), samples)


def ess_tail(samples) -> np.ndarray | float:
    """Tail ESS: min of the ESS of the split-chain indicators I(x <= q05), I(x <= q95)."""

    def one(x):
        q05, q95 = np.quantile(x, [0.05, 0.95])
        s = _split_chains(x)
        return float(
            np.nanmin([_ess_basic((s <= q05).astype(float)), _ess_basic((s <= q95).astype(float))])
            if np.all(np.isfinite(x))
            else np.nan
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN nanmin
        return _per_param(one, samples)


def mcse_mean(samples) -> np.ndarray | float:
    """Monte Carlo standard error of the mean: `sd / sqrt(ess)`."""

    def one(x):
        return float(np.std(x, ddof=1) / np.sqrt(_ess_basic(_split_chains(x))))

    return _per_param(one, samples)


# --------------------------------------------------------------------------------------
# Summary and convergence check
# --------------------------------------------------------------------------------------


def _check_names(samples, names) -> tuple[np.ndarray, list[str]]:
    x = np.asarray(samples, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"`samples` must have shape (chain, draw, p). Got shape {x.shape}.")
    names = [str(n) for n in names]
    if len(names) != x.shape[2]:
        raise ValueError(
            f"`names` has {len(names)} entries but `samples` has p = {x.shape[2]} parameters "
            f"(shape {x.shape})."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"`names` must be unique. Got {names}.")
    return x, names


def summarize(samples, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-parameter posterior summary and diagnostics, without pandas.

    **Arguments:** `samples`: `(chain, draw, p)`; `names`: `p` parameter names.

    **Returns:** `{name: {"mean", "sd", "q5", "q50", "q95", "mcse_mean", "ess_bulk",
    "ess_tail", "r_hat"}}` of floats (see :data:`SUMMARY_COLUMNS`);
    :func:`format_summary` prints it as a table.
    """
    x, names = _check_names(samples, names)
    out = {}
    rh, eb, et, mc = rhat(x), ess_bulk(x), ess_tail(x), mcse_mean(x)
    for j, name in enumerate(names):
        v = x[:, :, j]
        q5, q50, q95 = np.quantile(v, [0.05, 0.5, 0.95])
        out[name] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "q5": float(q5),
            "q50": float(q50),
            "q95": float(q95),
            "mcse_mean": float(mc[j]),
            "ess_bulk": float(eb[j]),
            "ess_tail": float(et[j]),
            "r_hat": float(rh[j]),
        }
    return out


def format_summary(summary: dict[str, dict[str, float]]) -> str:
    """Fixed-width text table of a :func:`summarize` result."""
    width = max([5] + [len(n) for n in summary])
    head = f"{'':{width}} " + " ".join(f"{c:>10}" for c in SUMMARY_COLUMNS)
    rows = [head]
    for name, row in summary.items():
        cells = []
        for c in SUMMARY_COLUMNS:
            v = row[c]
            cells.append(f"{v:>10.0f}" if c.startswith("ess") else f"{v:>10.4g}")
        rows.append(f"{name:{width}} " + " ".join(cells))
    return "\n".join(rows)


def check_convergence(
    samples,
    names: Sequence[str],
    *,
    rhat_threshold: float = 1.01,
    ess_threshold: float = 400.0,
    summary: dict[str, dict[str, float]] | None = None,
) -> dict[str, list[str]]:
    """Warn, naming the parameter, when R-hat > `rhat_threshold` or bulk or tail ESS <
    `ess_threshold` (defaults from Vehtari et al. 2021).

    **Arguments:** `samples`: `(chain, draw, p)`; `names`: `p` names; `summary`: a
    :func:`summarize` result to reuse instead of recomputing.

    **Returns:** `{name: [problems]}` for the parameters that failed (empty if none);
    one `UserWarning` is emitted per failing parameter. Undefined (NaN) diagnostics
    count as failures.
    """
    if summary is None:
        summary = summarize(samples, names)
    problems: dict[str, list[str]] = {}
    for name, row in summary.items():
        msgs = []
        if not row["r_hat"] <= rhat_threshold:
            msgs.append(f"R-hat = {row['r_hat']:.3f} > {rhat_threshold}")
        for col in ("ess_bulk", "ess_tail"):
            if not row[col] >= ess_threshold:
                msgs.append(f"{col.replace('_', ' ')} = {row[col]:.0f} < {ess_threshold:g}")
        if msgs:
            problems[name] = msgs
            warnings.warn(
                f"Parameter {name!r} has not converged: {'; '.join(msgs)}. Run longer or "
                "more chains (num_samples, num_chains), start chains from dispersed points, "
                "or reparameterise.",
                UserWarning,
                stacklevel=2,
            )
    return problems


# --------------------------------------------------------------------------------------
# xarray.DataTree
# --------------------------------------------------------------------------------------


def _clean_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Keep attrs netCDF can store: str, numbers, 1-D numeric arrays; drop None."""
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)):
            v = int(v)
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, (list, tuple, np.ndarray)):
            arr = np.asarray(v)
            if arr.dtype.kind not in "iuf" or arr.ndim > 1:
                v = str(v)
            else:
                v = arr
        elif not isinstance(v, (str, int, float)):
            v = str(v)
        out[str(k)] = v
    return out


def _apply_transforms(transforms: Callable, z: np.ndarray) -> dict[str, np.ndarray]:
    """Apply `z -> {name: array}` over all (chain, draw).

    A JAX-traceable `transforms` of one `z` of shape `(p,)` is jit-vmapped. One that
    is not traceable (it converts to NumPy) is called once on the `(chain * draw, p)`
    batch instead, so it must broadcast over leading dims (e.g. index with `z[..., i]`).
    """
    import jax

    c, d, p = z.shape
    flat = z.reshape(c * d, p)
    try:
        out = jax.jit(jax.vmap(transforms))(flat)
    except (
        jax.errors.TracerArrayConversionError,
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerBoolConversionError,
        jax.errors.TracerIntegerConversionError,
    ):
        out = transforms(flat)
    if not isinstance(out, dict) or not out:
        raise TypeError(
            "`transforms` must map an unconstrained vector z of shape (p,) to a non-empty "
            f"dict of user-unit arrays, e.g. `lambda z: {{'D': jnp.exp(z[0])}}`. "
            f"Got {type(out).__name__} instead."
        )
    arrays = {}
    for k, v in out.items():
        v = np.asarray(v)
        if v.shape[:1] != (c * d,):
            raise ValueError(
                f"`transforms` output {k!r} has shape {v.shape} for {c * d} draws; a "
                "non-JAX `transforms` must broadcast over leading dims of z (use z[..., i])."
            )
        arrays[str(k)] = v.reshape(c, d, *v.shape[1:])
    return arrays


def _dataset(arrays: dict[str, np.ndarray], coords: dict[str, Any], attrs: dict[str, Any]):
    import xarray as xr

    data_vars = {}
    for name, a in arrays.items():
        dims = ("chain", "draw") + tuple(f"{name}_dim_{i}" for i in range(a.ndim - 2))
        data_vars[name] = (dims, a)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def to_datatree(
    samples,
    names: Sequence[str],
    sample_stats: dict[str, Any] | None = None,
    *,
    transforms: Callable | None = None,
    attrs: dict[str, Any] | None = None,
):
    """Label draws as an `xarray.DataTree` in the ArviZ layout.

    **Arguments:**

    - `samples`: `(chain, draw, p)` unconstrained draws `z`.
    - `names`: `p` names of the entries of `z`.
    - `sample_stats`: dict of `(chain, draw)` arrays (`lp`, `acceptance_rate`,
      `diverging`, `tree_depth`, `n_steps`, ...), e.g. `MCMCResult.sample_stats`.
    - `transforms`: optional function mapping one `z` of shape `(p,)` to a dict
      `{name: array}` in user units (e.g. `{"D": exp(z[0]), "r": z[1]}`). A JAX
      function is jit-vmapped over all draws; one that is not traceable (NumPy inside)
      is called once on the `(chain * draw, p)` batch and must broadcast over leading
      dims. Non-scalar outputs get extra dims `<name>_dim_<i>`.
    - `attrs`: metadata (sampler, timings, log evidence, seed, ...) stored on the root
      and on each group; `None` values are dropped, other non-numeric values stored
      as strings, so the tree can be written to netCDF.

    **Returns:** a `DataTree` with groups

    - `posterior`: one variable per parameter on dims `("chain", "draw")`, in user units
      (the transformed values when `transforms` is given, else `z` under `names`);
    - `unconstrained_posterior` (only with `transforms`): `z` under `names`;
    - `sample_stats`: the sample statistics on `("chain", "draw")`.

    **Raises:** `ValueError` for inconsistent shapes or names; `TypeError` when
    `transforms` does not return a dict.
    """
    import xarray as xr

    import physreg

    x, names = _check_names(samples, names)
    c, d, _ = x.shape
    coords = {"chain": np.arange(c), "draw": np.arange(d)}
    meta = {"inference_library": "blackjax", "physreg_version": physreg.__version__}
    meta.update(attrs or {})
    meta = _clean_attrs(meta)

    raw = {n: x[:, :, j] for j, n in enumerate(names)}
    groups = {}
    if transforms is None:
        groups["posterior"] = _dataset(raw, coords, meta)
    else:
        groups["posterior"] = _dataset(_apply_transforms(transforms, x), coords, meta)
        groups["unconstrained_posterior"] = _dataset(raw, coords, meta)
    stats_arrays = {}
    for k, v in (sample_stats or {}).items():
        a = np.asarray(v)
        if a.shape[:2] != (c, d):
            raise ValueError(
                f"sample_stats[{k!r}] must have shape (chain, draw) = ({c}, {d}). "
                f"Got shape {a.shape} instead."
            )
        stats_arrays[str(k)] = a
    groups["sample_stats"] = _dataset(stats_arrays, coords, meta)
    tree = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    tree.attrs = meta
    return tree
