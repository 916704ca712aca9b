"""The observation and covariate contract of physreg.

Observations reach physreg as :mod:`xarray` objects in one of two layouts
(``DESIGN.md``, "Data contract"):

* **gridded** -- the target variable on dims ``("time", "x")`` or
  ``("time", "y", "x")`` with numeric, strictly increasing coordinates;
  NaN marks a point that was not observed;
* **scattered** -- the target variable on one dim ``"obs"``, with coordinates
  ``time``, ``x`` (and ``y`` in 2-D) along ``"obs"``.

:func:`validate_observations` checks either layout and flattens it into an
:class:`Observations` record (one entry per observed value) that the
likelihoods, solvers and PINNs consume. Covariates are a separate
:class:`xarray.Dataset` checked by :func:`validate_covariates` and evaluated
at arbitrary points by :func:`interpolate_covariates`. :func:`to_scattered`
and :func:`to_gridded` convert between the two layouts.

Every check raises a :class:`ValueError` (a :class:`TypeError` when the
object passed is not an xarray object at all) whose message names the
offending variable and says what is wrong, so that bad input never turns
into a silently wrong estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

__all__ = [
    "AREAL_NAMES",
    "Observations",
    "interpolate_covariates",
    "to_gridded",
    "to_scattered",
    "validate_covariates",
    "validate_observations",
]

#: Spatial dims, in storage order, for 1-D and 2-D problems.
SPATIAL_DIMS: dict[int, tuple[str, ...]] = {1: ("x",), 2: ("y", "x")}

#: Names of the areal observation operator's support, picked up automatically
#: from coordinates, variables or scalar attrs: an observation is the mean of
#: ``u`` over a disk of this ``radius`` or a square cell of side ``cell_size``.
AREAL_NAMES: tuple[str, ...] = ("radius", "cell_size")

#: :func:`to_gridded` refuses to build a grid with more cells than this: so many
#: cells mean the points are not on a rectilinear grid (e.g. projected coordinates).
_MAX_GRID_CELLS = 20_000_000


# ---------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Observations:
    """Validated observations, flattened to one entry per observed value.

    Built by :func:`validate_observations`; not meant to be built by hand.
    Instances compare by identity (their fields are arrays).

    Attributes
    ----------
    target : str
        Name of the observed data variable.
    ndim : int
        Number of spatial dims: 1 or 2.
    time, x : np.ndarray
        Shape ``(n,)``, float64: time and position of each observation.
    y : np.ndarray or None
        Shape ``(n,)`` in 2-D, None in 1-D.
    value : np.ndarray
        Shape ``(n,)``, float64: the observed values (NaN removed).
    extras : dict of str to np.ndarray
        Per-observation auxiliary arrays of shape ``(n,)`` aligned with
        ``value``: the ``extras=`` mapping of :func:`validate_observations`
        plus ``"radius"`` / ``"cell_size"`` when the data are areal.
    layout : {"gridded", "scattered"}
        Layout of the input.
    grid : dict or None
        Gridded input only: ``{"time": ..., "x": ..., "y": ... (2-D),
        "index": ..., "shape": ...}`` -- the coordinate arrays, the flat
        C-order index ``(n,)`` of each kept observation into the full
        ``(time, [y,] x)`` grid, and that grid's shape.
    units : dict of str to str or None
        ``attrs["units"]`` of ``"time"``, ``"x"``, ``"y"`` (2-D only) and the
        target; None where missing.
    attrs : dict
        The target variable's attrs merged over the dataset's attrs.
    """

    target: str
    ndim: int
    time: np.ndarray
    x: np.ndarray
    y: np.ndarray | None
    value: np.ndarray
    extras: dict[str, np.ndarray]
    layout: str
    grid: dict | None
    units: dict[str, str | None]
    attrs: dict

    @property
    def n_obs(self) -> int:
        """Number of observed values."""
        return int(self.value.size)

    @cached_property
    def _time_levels(self) -> tuple[np.ndarray, np.ndarray]:
        levels, inverse = np.unique(self.time, return_inverse=True)
        return levels, inverse.reshape(self.time.shape)

    @property
    def unique_times(self) -> np.ndarray:
        """Sorted distinct observation times, shape ``(n_times,)``."""
        return self._time_levels[0]

    @property
    def time_index(self) -> np.ndarray:
        """Index of each observation's time into :attr:`unique_times`, shape ``(n,)``."""
        return self._time_levels[1]

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        """``("x",)`` in 1-D, ``("y", "x")`` in 2-D."""
        return SPATIAL_DIMS[self.ndim]

    def to_dataset(self) -> xr.Dataset:
        """Rebuild an :class:`xarray.Dataset` in the original layout.

        Returns
        -------
        xr.Dataset
            Gridded input gives the full ``(time, [y,] x)`` grid, NaN where
            nothing was observed; scattered input gives dim ``"obs"`` with
            coordinates ``time``, ``x`` (, ``y``). The target carries
            :attr:`attrs`; extras become variables named by their key
            (``radius`` / ``cell_size`` as coordinates, so that validating the
            result picks them up again).
        """
        axes = ("time",) + self.spatial_dims
        if self.layout == "gridded":
            dims = axes
            shape = self.grid["shape"]

            def place(values: np.ndarray) -> np.ndarray:
                full = np.full(math.prod(shape), np.nan)
                full[self.grid["index"]] = values
                return full.reshape(shape)

            coords = {a: (a, self.grid[a], self._units_attrs(a)) for a in axes}
        else:
            dims = ("obs",)
            place = np.asarray
            coords = {a: (dims, getattr(self, a), self._units_attrs(a)) for a in axes}
        data_vars = {self.target: (dims, place(self.value), dict(self.attrs))}
        for key, values in self.extras.items():
            (coords if key in AREAL_NAMES else data_vars)[key] = (dims, place(values))
        return xr.Dataset(data_vars, coords=coords)

    def _units_attrs(self, name: str) -> dict[str, str]:
        unit = self.units.get(name)
        return {} if unit is None else {"units": unit}


# ---------------------------------------------------------------------------
# Small checks shared by observations and covariates
# ---------------------------------------------------------------------------


def _as_dataset(obj: Any, target: str, argname: str) -> tuple[xr.Dataset, str]:
    """Return ``(dataset, target)`` from a Dataset or a DataArray."""
    if isinstance(obj, xr.DataArray):
        name = target if obj.name is None else str(obj.name)
        return obj.to_dataset(name=name), name
    if isinstance(obj, xr.Dataset):
        return obj, target
    raise TypeError(
        f"{argname} must be an xarray.Dataset or xarray.DataArray, got "
        f"{type(obj).__module__}.{type(obj).__qualname__}"
    )


def _float_array(values: Any, what: str) -> np.ndarray:
    """Convert to float64, refusing non-numeric dtypes and infinite values."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise ValueError(
            f"{what} has non-numeric dtype {values.dtype}; expected real numbers "
            "(convert dates or labels to numbers first)"
        )
    values = values.astype(np.float64)
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise ValueError(f"{what} has {n_inf} infinite value(s); use NaN for missing data")
    return values


def _axis_coord(ds: xr.Dataset, dim: str, owner: str) -> np.ndarray:
    """Check the coordinate of dim ``dim`` and return it as float64.

    It must exist, be numeric and finite, and be strictly increasing.
    """
    if dim not in ds.coords:
        raise ValueError(
            f"dimension {dim!r} of {owner} has no coordinate; add one, "
            f"e.g. ds.assign_coords({dim}=values)"
        )
    values = _float_array(ds[dim].values, f"coordinate {dim!r} of {owner}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"coordinate {dim!r} of {owner} has NaN values")
    steps = np.diff(values)
    if np.any(steps == 0):
        i = int(np.flatnonzero(steps == 0)[0])
        raise ValueError(
            f"coordinate {dim!r} of {owner} has duplicate values ({values[i]:g} "
            "appears more than once); coordinates must be strictly increasing"
        )
    if np.any(steps < 0):
        i = int(np.flatnonzero(steps < 0)[0])
        raise ValueError(
            f"coordinate {dim!r} of {owner} is not strictly increasing "
            f"({values[i]:g} then {values[i + 1]:g}); sort it with ds.sortby({dim!r})"
        )
    return values


def _check_times(time: np.ndarray, owner: str) -> None:
    """Observation times must be finite and non-negative."""
    if not np.all(np.isfinite(time)):
        n_bad = int((~np.isfinite(time)).sum())
        raise ValueError(f"coordinate 'time' of {owner} has {n_bad} non-finite value(s)")
    if np.any(time < 0):
        raise ValueError(
            f"coordinate 'time' of {owner} has negative values (min {time.min():g}); "
            "times must be >= 0: shift them, e.g. ds.assign_coords(time=ds.time - t0)"
        )


def _check_bounds(bounds: Any, what: str) -> tuple[float, float]:
    """Check a ``(low, high)`` pair: two finite numbers with low < high."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair (low, high) of numbers, got {bounds!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{what} = {bounds!r} must be finite")
    if not low < high:
        raise ValueError(f"{what} = {bounds!r} is inverted or empty: need low < high")
    return low, high


def _check_domain(domain: Mapping | None, ndim: int) -> dict[str, tuple[float, float]]:
    """Validate a domain mapping such as ``{"x": (0, 10), "y": (0, 5)}``."""
    if domain is None:
        return {}
    if not isinstance(domain, Mapping):
        raise TypeError(
            f"domain must be a dict such as {{'x': (0.0, 10.0)}}, got {type(domain).__name__}"
        )
    axes = SPATIAL_DIMS[ndim]
    checked = {}
    for axis, bounds in domain.items():
        if axis not in axes:
            raise ValueError(
                f"domain has axis {axis!r}, but the data are {ndim}-D with spatial axes {axes}"
            )
        checked[axis] = _check_bounds(bounds, f"domain[{axis!r}]")
    return checked


# ---------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------


def _gridded_points(
    ds: xr.Dataset, da: xr.DataArray, owner: str
) -> tuple[xr.DataArray, np.ndarray, np.ndarray, dict[str, np.ndarray], dict]:
    """Flatten a gridded target.

    Returns ``(da, values, keep, points, grid)``: the target transposed to
    ``(time, [y,] x)``, its flat float64 values, the flat index of the
    observed ones, their coordinates and the ``grid`` of :class:`Observations`.
    """
    ndim = len(da.dims) - 1
    axes = ("time",) + SPATIAL_DIMS[ndim]
    da = da.transpose(*axes)
    grid = {a: _axis_coord(ds, a, owner) for a in axes}
    _check_times(grid["time"], owner)
    values = _float_array(da.values, owner).ravel()
    keep = np.flatnonzero(~np.isnan(values))
    shape = tuple(grid[a].size for a in axes)
    points = {a: grid[a][i] for a, i in zip(axes, np.unravel_index(keep, shape), strict=True)}
    grid.update(index=keep, shape=shape)
    return da, values, keep, points, grid


def _scattered_points(
    ds: xr.Dataset, da: xr.DataArray, owner: str
) -> tuple[xr.DataArray, np.ndarray, np.ndarray, dict[str, np.ndarray], None]:
    """Flatten a scattered target; returns as :func:`_gridded_points`, with no grid."""
    if da.dims != ("obs",):
        raise ValueError(f"scattered {owner} must have the single dim 'obs', found dims {da.dims}")
    axes = ("time",) + SPATIAL_DIMS[2 if "y" in ds.variables else 1]
    for axis in axes:
        if axis not in ds.coords:
            hint = (
                f"it is a data variable: make it a coordinate with ds.set_coords({axis!r})"
                if axis in ds.data_vars
                else f"found coordinates {sorted(map(str, ds.coords))}"
            )
            raise ValueError(f"scattered {owner} needs a coordinate {axis!r} along 'obs'; {hint}")
        if ds[axis].dims != ("obs",):
            raise ValueError(
                f"coordinate {axis!r} of scattered {owner} must be on dim 'obs', "
                f"found dims {ds[axis].dims}"
            )
    values = _float_array(da.values, owner)
    keep = np.flatnonzero(~np.isnan(values))
    points = {a: _float_array(ds[a].values[keep], f"coordinate {a!r} of {owner}") for a in axes}
    for axis in axes[1:]:
        if not np.all(np.isfinite(points[axis])):
            raise ValueError(f"coordinate {axis!r} of {owner} is NaN at observed points")
    _check_times(points["time"], owner)
    return da, values, keep, points, None


def _extra_values(
    ds: xr.Dataset, source: str, key: str, da: xr.DataArray, keep: np.ndarray, owner: str
) -> np.ndarray:
    """Broadcast variable ``source`` to the target's shape and keep the observed entries."""
    if source not in ds.variables:
        raise ValueError(
            f"extras[{key!r}] refers to {source!r}, which is not in the data; available "
            f"variables and coordinates: {sorted(map(str, ds.variables))}"
        )
    var = ds[source]
    stray = [d for d in var.dims if d not in da.dims]
    if stray:
        raise ValueError(
            f"variable {source!r} (extras[{key!r}]) has dims {var.dims}, not all among "
            f"the dims {da.dims} of {owner}"
        )
    what = f"variable {source!r} (extras[{key!r}])"
    values = _float_array(var.broadcast_like(da).transpose(*da.dims).values, what)
    values = values.ravel()[keep]
    n_nan = int(np.isnan(values).sum())
    if n_nan:
        raise ValueError(f"{what} is NaN at {n_nan} point(s) where {owner} is observed")
    return values


def _areal_extras(ds: xr.Dataset, attrs: Mapping, explicit: Mapping[str, str]) -> dict[str, Any]:
    """Find the areal support: ``{name: variable name or scalar attr value}``."""
    found: dict[str, Any] = {}
    for name in AREAL_NAMES:
        if name in explicit:
            continue
        if name in ds.variables:
            found[name] = name
        elif name in attrs:
            value = attrs[name]
            if np.ndim(value) != 0 or np.asarray(value).dtype.kind not in "biuf":
                raise ValueError(f"attribute {name!r} must be a scalar number, got {value!r}")
            found[name] = float(value)
    return found


def validate_observations(
    obs: xr.Dataset | xr.DataArray,
    target: str = "density",
    *,
    extras: Mapping[str, str] | None = None,
    domain: Mapping[str, tuple[float, float]] | None = None,
) -> Observations:
    """Check observations against the data contract and flatten them.

    Parameters
    ----------
    obs : xr.Dataset or xr.DataArray
        Gridded observations (``target`` on dims ``("time", "x")`` or
        ``("time", "y", "x")``, in any order; NaN = not observed) or scattered
        ones (``target`` on dim ``"obs"`` with coordinates ``time``, ``x``
        and, in 2-D, ``y`` along ``"obs"``). A DataArray's own name is the
        target when it has one.
    target : str, default "density"
        Name of the observed data variable.
    extras : mapping of str to str, optional
        Auxiliary per-observation data, ``{extra_name: variable_or_coord}``,
        e.g. ``{"sd": "density_sd", "offset": "effort", "trials": "n_trials"}``.
        Each variable is broadcast to the target's shape (its dims must be a
        subset of the target's) and reduced to the observed points. Variables
        or coordinates named ``radius`` / ``cell_size`` (or scalar attrs of
        those names) are added automatically: they are the support of an areal
        observation (mean of ``u`` over a disk of that radius or a square cell
        of that side).
    domain : mapping of str to (float, float), optional
        Spatial domain, e.g. ``{"x": (0, 10)}`` or ``{"x": (0, 10), "y": (0, 5)}``;
        every observation must lie inside it (bounds included).

    Returns
    -------
    Observations
        One entry per observed (non-NaN) value, in C order of the grid for
        gridded data and in row order for scattered data.

    Raises
    ------
    TypeError
        If ``obs`` is not an xarray object or ``domain`` is not a mapping.
    ValueError
        Naming the variable at fault: target missing, wrong or missing dims or
        coordinates, non-numeric data, coordinates not strictly increasing or
        with duplicate values, all-NaN data, infinite values, negative or
        non-finite times, observations outside ``domain``, extras missing,
        misshapen or NaN where the target is observed, negative areal support.
    """
    ds, target = _as_dataset(obs, target, "obs")
    if target not in ds.data_vars:
        raise ValueError(
            f"target variable {target!r} not found; available data variables: "
            f"{sorted(map(str, ds.data_vars))} (choose one with target=...)"
        )
    da = ds[target]
    owner = f"variable {target!r}"
    if "obs" in da.dims:
        layout, flatten = "scattered", _scattered_points
    elif set(da.dims) in ({"time", "x"}, {"time", "y", "x"}):
        layout, flatten = "gridded", _gridded_points
    else:
        raise ValueError(
            f"{owner} has dims {da.dims}; expected gridded ('time', 'x') or "
            "('time', 'y', 'x'), or scattered ('obs',) with coordinates time, x[, y] along 'obs'"
        )
    da, values, keep, points, grid = flatten(ds, da, owner)
    if keep.size == 0:
        raise ValueError(f"{owner} has no observed value: it is all NaN")
    ndim = len(points) - 1

    for axis, (low, high) in _check_domain(domain, ndim).items():
        outside = (points[axis] < low) | (points[axis] > high)
        if outside.any():
            raise ValueError(
                f"{int(outside.sum())} observation(s) of {owner} lie outside the domain "
                f"along {axis!r}: e.g. {axis}={points[axis][outside][0]:g} is not in "
                f"[{low:g}, {high:g}]"
            )

    attrs = {**ds.attrs, **da.attrs}
    explicit = dict(extras or {})
    sources: dict[str, Any] = {**explicit, **_areal_extras(ds, attrs, explicit)}
    extra_values = {
        key: (
            np.full(keep.size, source)
            if isinstance(source, float)
            else _extra_values(ds, str(source), key, da, keep, owner)
        )
        for key, source in sources.items()
    }
    areal = [name for name in AREAL_NAMES if name in extra_values]
    if len(areal) > 1:
        raise ValueError(
            f"{owner} has both 'radius' and 'cell_size': the observation operator is "
            "either a disk or a square cell; drop one"
        )
    for name in areal:
        if np.any(extra_values[name] < 0):
            raise ValueError(f"{name!r} of {owner} has negative values")

    units = {a: ds[a].attrs.get("units") for a in points}
    units[target] = da.attrs.get("units")
    return Observations(
        target=target,
        ndim=ndim,
        time=points["time"],
        x=points["x"],
        y=points.get("y"),
        value=values[keep],
        extras=extra_values,
        layout=layout,
        grid=grid,
        units=units,
        attrs=attrs,
    )


# ---------------------------------------------------------------------------
# Layout conversions
# ---------------------------------------------------------------------------


def to_scattered(ds: xr.Dataset | xr.DataArray, target: str = "density") -> xr.Dataset:
    """Convert gridded observations to the scattered layout.

    Every variable that shares a dim with the target is broadcast to the
    target's grid and stacked along ``"obs"``; only points where ``target``
    is observed (not NaN) are kept, in C order of the ``(time, [y,] x)`` grid.
    Coordinates keep their attrs (units).

    Parameters
    ----------
    ds : xr.Dataset or xr.DataArray
        Observations in either layout (see :func:`validate_observations`).
    target : str, default "density"
        Name of the observed variable.

    Returns
    -------
    xr.Dataset
        Dim ``"obs"`` with coordinates ``time``, ``x`` (, ``y``). Scattered
        input comes back with its unobserved rows dropped.

    Raises
    ------
    TypeError, ValueError
        As :func:`validate_observations`.
    """
    ds, target = _as_dataset(ds, target, "ds")
    obs = validate_observations(ds, target)
    if obs.layout == "scattered":
        return ds.isel(obs=np.flatnonzero(ds[target].notnull().values))
    axes = ("time",) + obs.spatial_dims
    stacked = ds.stack(obs=axes).reset_index("obs")
    return stacked.isel(obs=obs.grid["index"])


def to_gridded(ds: xr.Dataset | xr.DataArray, target: str = "density") -> xr.Dataset:
    """Convert scattered observations to the gridded layout.

    The grid is the product of the distinct values of ``time``, ``y`` and
    ``x`` among the observed points (exact equality: coordinates that went
    through a projection or rounding will not line up). Cells without an
    observation are NaN; every variable along ``"obs"`` is placed on the grid
    the same way (integers and booleans become float).

    Parameters
    ----------
    ds : xr.Dataset or xr.DataArray
        Observations in either layout (see :func:`validate_observations`).
    target : str, default "density"
        Name of the observed variable.

    Returns
    -------
    xr.Dataset
        The target on ``("time", "x")`` or ``("time", "y", "x")``. Gridded
        input comes back transposed to that order.

    Raises
    ------
    ValueError
        As :func:`validate_observations`, and if the points do not form a
        grid: two observations at the same (time, [y,] x), or a grid of more
        than 20 million cells (scattered, non-aligned coordinates).
    """
    ds, target = _as_dataset(ds, target, "ds")
    obs = validate_observations(ds, target)
    axes = ("time",) + obs.spatial_dims
    if obs.layout == "gridded":
        return ds.transpose(*axes, ...)
    points = np.column_stack([getattr(obs, a) for a in axes])
    distinct = np.unique(points, axis=0)
    if len(distinct) < len(points):
        raise ValueError(
            f"the points of variable {target!r} do not form a grid: "
            f"{len(points) - len(distinct)} observation(s) share a (time, {', '.join(axes[1:])}) "
            "with another; average or drop the duplicates first"
        )
    sizes = {a: np.unique(getattr(obs, a)).size for a in axes}
    n_cells = math.prod(sizes.values())
    if n_cells > _MAX_GRID_CELLS:
        counts = " x ".join(f"{n} {a}" for a, n in sizes.items())
        raise ValueError(
            f"the points of variable {target!r} do not form a grid: their distinct "
            f"coordinates ({counts}) would make {n_cells:,} cells for {len(points):,} "
            f"observations (limit {_MAX_GRID_CELLS:,}); keep them scattered"
        )
    kept = ds.isel(obs=np.flatnonzero(ds[target].notnull().values))
    return kept.set_index(obs=list(axes)).unstack("obs").transpose(*axes, ...)


# ---------------------------------------------------------------------------
# Covariates
# ---------------------------------------------------------------------------


def _covariate_axes(var: xr.DataArray, name: str, ndim: int) -> tuple[str, ...]:
    """Storage order of covariate ``name``'s dims, checking them against ``ndim``."""
    spatial = SPATIAL_DIMS[ndim]
    if set(var.dims) - {"time"} != set(spatial):
        raise ValueError(
            f"covariate {name!r} has dims {var.dims}; with {ndim}-D observations a covariate "
            f"must be on {spatial} or, time-varying, on {('time',) + spatial}"
        )
    return (("time",) if "time" in var.dims else ()) + spatial


def _check_covers(coord: np.ndarray, bounds: tuple[float, float], what: str) -> None:
    """``coord`` must reach ``bounds`` to within half its end grid steps."""
    low_tol = (coord[1] - coord[0]) / 2 if coord.size > 1 else 0.0
    high_tol = (coord[-1] - coord[-2]) / 2 if coord.size > 1 else 0.0
    low, high = bounds
    if coord[0] - low_tol > low or coord[-1] + high_tol < high:
        raise ValueError(
            f"{what}: the coordinate covers [{coord[0]:g}, {coord[-1]:g}] (half a grid step "
            f"beyond: [{coord[0] - low_tol:g}, {coord[-1] + high_tol:g}]), which does not "
            f"include [{low:g}, {high:g}]"
        )


def validate_covariates(
    cov: xr.Dataset | xr.DataArray,
    *,
    ndim: int,
    domain: Mapping[str, tuple[float, float]] | None = None,
    time_range: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Check spatial (optionally time-varying) covariates.

    Parameters
    ----------
    cov : xr.Dataset or named xr.DataArray
        Each data variable is one covariate on ``("x",)`` / ``("y", "x")``, or
        time-varying on ``("time", "x")`` / ``("time", "y", "x")`` (any order).
    ndim : {1, 2}
        Spatial dimension of the observations.
    domain : mapping of str to (float, float), optional
        Spatial domain, as in :func:`validate_observations`. Each covariate's
        coordinates must cover it, with a tolerance of half a grid step at
        each end (cell-centred grids).
    time_range : (float, float), optional
        Time span of the model; time-varying covariates must cover it in the
        same way.

    Returns
    -------
    xr.Dataset
        The covariates, transposed to ``([time,] [y,] x)`` and cast to float64
        (coordinates too, attrs kept).

    Raises
    ------
    TypeError
        If ``cov`` is not an xarray object.
    ValueError
        Naming the covariate or coordinate: wrong dims for ``ndim``,
        non-numeric or NaN/infinite values, coordinates missing, not strictly
        increasing or with duplicates, domain or time range not covered.
    """
    if isinstance(cov, xr.DataArray) and cov.name is None:
        raise ValueError("a covariate DataArray needs a name: cov.rename('elevation')")
    cov, _ = _as_dataset(cov, "", "cov")
    if ndim not in SPATIAL_DIMS:
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    if not cov.data_vars:
        raise ValueError("covariates: the dataset has no data variables")
    bounds = _check_domain(domain, ndim)
    if time_range is not None:
        low, high = (float(t) for t in time_range)
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"time_range = {time_range!r} must be finite with start <= end")
        bounds["time"] = (low, high)

    coords: dict[str, np.ndarray] = {}
    checked = {}
    for name, var in cov.data_vars.items():
        axes = _covariate_axes(var, name, ndim)
        values = _float_array(var.transpose(*axes).values, f"covariate {name!r}")
        n_nan = int(np.isnan(values).sum())
        if n_nan:
            raise ValueError(f"covariate {name!r} has {n_nan} NaN value(s); fill them first")
        for axis in axes:
            if axis not in coords:
                coords[axis] = _axis_coord(cov, axis, "covariates")
            if axis in bounds:
                extent = "time range" if axis == "time" else "domain"
                _check_covers(
                    coords[axis],
                    bounds[axis],
                    f"covariate {name!r} does not cover the {extent} along {axis!r}",
                )
        checked[name] = var.transpose(*axes).copy(data=values)
    out = xr.Dataset(checked, attrs=dict(cov.attrs))
    return out.assign_coords({a: (a, c, dict(cov[a].attrs)) for a, c in coords.items()})


def _interp_clamped(
    axes: list[np.ndarray], values: np.ndarray, queries: list[np.ndarray]
) -> np.ndarray:
    """Multilinear interpolation on a rectilinear grid, clamped at its edges.

    Clamping each query coordinate to its axis range is the same as
    extending the grid with its edge values along that axis.
    """
    shape = np.broadcast_shapes(*(q.shape for q in queries))
    live = [i for i, a in enumerate(axes) if a.size > 1]
    values = values.reshape([axes[i].size for i in live])  # drop length-1 axes
    if not live:
        return np.full(shape, float(values))
    points = np.stack(
        [np.broadcast_to(np.clip(queries[i], axes[i][0], axes[i][-1]), shape) for i in live],
        axis=-1,
    )
    interpolator = RegularGridInterpolator([axes[i] for i in live], values, method="linear")
    return interpolator(points)


def interpolate_covariates(
    cov: xr.Dataset,
    x: Any,
    y: Any = None,
    time: Any = None,
) -> dict[str, np.ndarray]:
    """Evaluate covariates at points by (multi)linear interpolation.

    Linear in ``x``, bilinear in ``(y, x)``, and also linear in time for
    time-varying covariates. Outside the outermost coordinates (the strip
    between the last grid point and the domain edge that
    :func:`validate_covariates` tolerates) the nearest edge value is used.

    Parameters
    ----------
    cov : xr.Dataset
        Covariates, as returned by :func:`validate_covariates`.
    x : array_like
        Query positions.
    y : array_like, optional
        Query positions along ``y``, broadcast with ``x``; required for 2-D
        covariates and refused for 1-D ones.
    time : array_like, optional
        1-D query times for time-varying covariates; None evaluates them at
        their own time coordinate. Ignored by static covariates.

    Returns
    -------
    dict of str to np.ndarray
        float64 values per covariate, of shape ``x.shape`` (the broadcast
        shape of ``x`` and ``y``) for static covariates and
        ``(n_times,) + x.shape`` for time-varying ones.

    Raises
    ------
    ValueError
        If ``y`` is missing for a 2-D covariate or given for a 1-D one, or
        a covariate's dims or coordinates are invalid.
    """
    x = np.asarray(x, dtype=np.float64)
    if y is not None:
        x, y = np.broadcast_arrays(x, np.asarray(y, dtype=np.float64))
    out = {}
    for name, var in cov.data_vars.items():
        ndim = 2 if "y" in var.dims else 1
        if (ndim == 2) != (y is not None):
            need = "needs y=" if ndim == 2 else "is 1-D: do not pass y"
            raise ValueError(f"covariate {name!r} has dims {var.dims} and {need}")
        axes = _covariate_axes(var, name, ndim)
        grid = [_axis_coord(cov, a, "covariates") for a in axes]
        queries = {"x": x, "y": y}
        if "time" in axes:
            t = grid[0] if time is None else np.asarray(time, dtype=np.float64).reshape(-1)
            queries["time"] = t.reshape(t.shape + (1,) * x.ndim)
        values = _float_array(var.transpose(*axes).values, f"covariate {name!r}")
        out[name] = _interp_clamped(grid, values, [queries[a] for a in axes])
    return out
