"""Datasets: loaders of real data from the data home, and synthetic generators.

Real data are never shipped with physreg: the loaders read them from a data
home folder (:func:`get_data_home`) and, when a file is missing, say where it
comes from. Each loader returns an :class:`xarray.Dataset` that follows the
data contract of :mod:`physreg.data`.

Real data
---------
* :func:`load_jin2016` -- PC-3 scratch-assay densities of Jin et al. (2016), 1-D, gridded.
* :func:`load_jin2016_reference` -- published Fisher-KPP estimates on those data.
* :func:`load_lanternfly` -- spotted lanternfly records of lydemapr, 2-D, scattered.

Synthetic data
--------------
The ``make_*`` generators are at the end of the module.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import os
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .likelihoods import (
    Bernoulli,
    Binomial,
    Gaussian,
    LogNormal,
    NegativeBinomial,
    ObservationModel,
    Poisson,
)
from .model import Domain, GaussianIntroductions, Link, ReactionDiffusion
from .solvers import FiniteVolumeSolver, observation_operator

__all__ = [
    "DATA_HOME_ENV",
    "get_data_home",
    "lanternfly_years",
    "load_jin2016",
    "load_jin2016_reference",
    "load_lanternfly",
]

#: Environment variable naming the data home.
DATA_HOME_ENV = "PHYSREG_DATA_HOME"

_DEFAULT_DATA_HOME = "~/physreg_data"


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the folder where physreg looks for real datasets.

    Parameters
    ----------
    data_home : str or path-like, optional
        Folder to use. Default: the ``PHYSREG_DATA_HOME`` environment variable
        if it is set and not empty, else ``~/physreg_data``.

    Returns
    -------
    pathlib.Path
        The folder, with ``~`` expanded. It is not created: physreg only reads it.
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or _DEFAULT_DATA_HOME
    return Path(data_home).expanduser()


def _data_file(relpath: str, data_home: str | os.PathLike | None, origin: str) -> Path:
    """Path of ``relpath`` in the data home; FileNotFoundError saying where to get it."""
    home = get_data_home(data_home)
    path = home / relpath
    if not path.is_file():
        raise FileNotFoundError(
            f"physreg data file not found: {path}\n"
            f"The data home is {home}; set it with the {DATA_HOME_ENV} environment "
            "variable or the data_home= argument.\n"
            f"This file comes from {origin}; save it as {path}."
        )
    return path


# ---------------------------------------------------------------------------
# Jin et al. (2016): PC-3 scratch assays
# ---------------------------------------------------------------------------

JIN2016_INITIAL_DENSITIES = (12000, 16000, 20000)
JIN2016_CARRYING_CAPACITY = 1.7e-3  # cells/um^2
JIN2016_COLUMN_AREA_UM2 = 50.0 * 1430.0  # each x bin is a 50 x 1430 um column
JIN2016_DOMAIN_X = (0.0, 1900.0)  # um, no-flux ends

_JIN_N_X, _JIN_N_T = 38, 5
_JIN_SHAPE = (1 + 2 * _JIN_N_X, 1 + _JIN_N_T)  # (77, 6): header row + mean block + sd block
_JIN_ORIGIN = (
    "the GitHub repository ProfMJSimpson/Warne2019_BulletinofMathematicalBiology, "
    "folder Data/ (https://github.com/ProfMJSimpson/Warne2019_BulletinofMathematicalBiology)"
)
_JIN_CITATION = (
    "Jin W, Shah ET, Penington CJ, McCue SW, Chopin LK, Simpson MJ (2016). Reproducibility "
    "of scratch assays is affected by the initial degree of confluence: experiments, "
    "modelling and model selection. J. Theor. Biol. 390:136-145. "
    "Data files from GitHub ProfMJSimpson/Warne2019_BulletinofMathematicalBiology, Data/."
)


def _read_jin_table(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read one Jin et al. CSV file; return ``(time, x, mean, sd)``.

    The file is a 77 x 6 table: row 0 = ``[0, t_1..t_5]`` (h); rows 1-38 =
    ``[x, mean density at each t]``; rows 39-76 = ``[x, sd at each t]``. It may
    be stored transposed (6 x 77, as ``fbs20000.csv`` is); anything else is refused.
    ``mean`` and ``sd`` have shape ``(n_x, n_t)``.
    """
    try:
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not a numeric CSV table ({err})") from None
    if table.shape == _JIN_SHAPE[::-1]:
        table = table.T
    elif table.shape != _JIN_SHAPE:
        raise ValueError(
            f"{path}: expected a {_JIN_SHAPE[0]} x {_JIN_SHAPE[1]} table (a header row of "
            f"{_JIN_N_T} times, then {_JIN_N_X} rows of means and {_JIN_N_X} rows of standard "
            f"deviations) or its {_JIN_SHAPE[1]} x {_JIN_SHAPE[0]} transpose; found shape {table.shape}"
        )
    time = table[0, 1:]
    x, mean = table[1 : 1 + _JIN_N_X, 0], table[1 : 1 + _JIN_N_X, 1:]
    x_sd, sd = table[1 + _JIN_N_X :, 0], table[1 + _JIN_N_X :, 1:]
    problems = []
    if table[0, 0] != 0:
        problems.append(f"the corner cell is {table[0, 0]:g}, expected 0")
    if np.any(time < 0) or np.any(np.diff(time) <= 0):
        problems.append(f"the header times {time} are not increasing and >= 0")
    if np.any(np.diff(x) <= 0):
        problems.append("the x column of the mean block is not strictly increasing")
    if not np.array_equal(x, x_sd):
        problems.append("the x column of the sd block differs from the mean block's")
    if not np.all(np.isfinite(table)) or np.any(mean < 0) or np.any(sd < 0):
        problems.append("densities or standard deviations are negative or not finite")
    if problems:
        raise ValueError(f"{path}: unexpected content: " + "; ".join(problems))
    return time, x, mean, sd


def load_jin2016(initial_density: int, *, data_home: str | os.PathLike | None = None) -> xr.Dataset:
    """Load the PC-3 scratch-assay densities of Jin et al. (2016).

    Cell density profiles averaged over 3 replicates, in 38 bins of 50 um
    (x = 25..1875 um) at t = 0, 12, 24, 36, 48 h, on the domain [0, 1900] um
    with no-flux ends.

    Parameters
    ----------
    initial_density : {12000, 16000, 20000}
        Initial seeding, cells per well; selects ``jin2016_pc3/fbs<initial_density>.csv``.
    data_home : str or path-like, optional
        See :func:`get_data_home`.

    Returns
    -------
    xr.Dataset
        Gridded, dims ``("time", "x")`` with shape (5, 38); coords ``time``
        (units "h") and ``x`` (units "um", bin centres). Variables:

        * ``density`` -- mean density over replicates, cells/um^2;
        * ``density_sd`` -- its standard deviation across replicates (zero in places);
        * ``count`` -- ``density * 71500``, the mean number of cells in a
          50 x 1430 um column (float).

        attrs: ``initial_density``, ``carrying_capacity`` (1.7e-3) with
        ``carrying_capacity_units``, ``domain_x`` (0, 1900), ``column_area_um2``,
        ``boundary``, ``source``, ``licence``.

    Raises
    ------
    ValueError
        If ``initial_density`` is not one of the three values, or the file's
        shape or content is not the expected one.
    FileNotFoundError
        If the file is not in the data home; the message says where to get it.
    """
    if initial_density not in JIN2016_INITIAL_DENSITIES:
        raise ValueError(
            f"initial_density must be one of {JIN2016_INITIAL_DENSITIES} (cells per well), "
            f"got {initial_density!r}"
        )
    initial_density = int(initial_density)
    path = _data_file(f"jin2016_pc3/fbs{initial_density}.csv", data_home, _JIN_ORIGIN)
    time, x, mean, sd = _read_jin_table(path)
    dims = ("time", "x")
    density_units = {"units": "cells/um^2"}
    return xr.Dataset(
        {
            "density": (dims, mean.T, {**density_units, "long_name": "cell density, mean of 3 replicates"}),
            "density_sd": (dims, sd.T, {**density_units, "long_name": "standard deviation of cell density across replicates"}),
            "count": (dims, mean.T * JIN2016_COLUMN_AREA_UM2, {"units": "cells", "long_name": "cells in a 50 x 1430 um column (density x 71500 um^2)"}),
        },
        coords={
            "time": ("time", time, {"units": "h", "long_name": "time since the scratch"}),
            "x": ("x", x, {"units": "um", "long_name": "centre of the 50 um bin"}),
        },
        attrs={
            "title": f"PC-3 scratch assay, {initial_density} cells per well",
            "initial_density": initial_density,
            "carrying_capacity": JIN2016_CARRYING_CAPACITY,
            "carrying_capacity_units": "cells/um^2",
            "domain_x": JIN2016_DOMAIN_X,
            "column_area_um2": JIN2016_COLUMN_AREA_UM2,
            "boundary": "no-flux at x = 0 and x = 1900 um",
            "source": _JIN_CITATION,
            "licence": "GPL-3.0 (as distributed in the Warne et al. 2019 repository)",
        },
    )  # fmt: skip


def load_jin2016_reference(*, data_home: str | os.PathLike | None = None) -> list[dict]:
    """Load published point estimates for the Jin et al. (2016) data.

    Reads ``jin2016_pc3/reference_estimates.csv``: estimates of Jin et al.
    (2016) and the refit of Lagergren et al. (2020, PLoS Comput. Biol.) for
    Fisher-KPP, ``du/dt = D u_xx + lambda u (1 - u/K)``, and a porous-Fisher
    variant. No intervals were published with them. The table is small and
    mixes numbers with free-text provenance, so it is returned as a list of
    plain dicts, one per row, in file order.

    Parameters
    ----------
    data_home : str or path-like, optional
        See :func:`get_data_home`.

    Returns
    -------
    list of dict
        Keys: ``initial_density`` (int, cells per well), ``model`` (str, e.g.
        "FKPP"), ``source`` (str), ``D`` (float, um^2/h), ``r`` (float, 1/h:
        the papers' lambda, physreg's ``r``), ``K`` (float, cells/um^2),
        ``c_min`` (float, um/h, minimum wave speed 2 sqrt(r D); None when not
        given), ``note`` (str). Select with e.g.
        ``[e for e in refs if e["initial_density"] == 12000 and e["model"] == "FKPP"]``.

    Raises
    ------
    FileNotFoundError
        If the file is not in the data home.
    """
    path = _data_file(
        "jin2016_pc3/reference_estimates.csv",
        data_home,
        "the physreg shared data folder (values compiled from Jin et al. 2016 and the "
        "BINNs repository of Lagergren et al. 2020)",
    )
    columns = {
        "initial_density": ("initial_cells_per_well", int),
        "model": ("model", str),
        "source": ("source", str),
        "D": ("D_um2_per_h", float),
        "r": ("lambda_per_h", float),
        "K": ("K_cells_per_um2", float),
        "c_min": ("c_min_um_per_h=2sqrt(lambda*D)", float),
        "note": ("note", str),
    }
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {col for col, _ in columns.values()} - set(rows[0] if rows else ())
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return [
        {
            key: (None if row[col].strip() == "" and kind is float else kind(row[col]))
            for key, (col, kind) in columns.items()
        }
        for row in rows
    ]


# ---------------------------------------------------------------------------
# Spotted lanternfly (lydemapr)
# ---------------------------------------------------------------------------

#: Mean Earth radius (IUGG), km: the sphere of the equal-area projection.
EARTH_RADIUS_KM = 6371.0088
#: Default projection centre (lon, lat): Berks County, Pennsylvania, where the
#: first established population was found in 2014.
LANTERNFLY_ORIGIN = (-75.93, 40.42)
LANTERNFLY_VARIABLES = ("lyde_present", "lyde_established", "lyde_density")
LANTERNFLY_DENSITY_LEVELS = ("Unpopulated", "Low", "Medium", "High")

_LYDE_ORIGIN = (
    "the R package lydemapr, GitHub ieco-lab/lydemapr (https://github.com/ieco-lab/lydemapr), "
    "data/lyde_10k.rda, converted to CSV with columns longitude, latitude, bio_year, "
    "lyde_present, lyde_established, lyde_density"
)
_MISSING = {"", "na", "nan"}
_BOOLEAN = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}
_LEVELS = {name.lower(): float(i) for i, name in enumerate(LANTERNFLY_DENSITY_LEVELS)}


def _lonlat_to_km(
    lon: np.ndarray, lat: np.ndarray, origin: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Lambert azimuthal equal-area projection on a sphere (Snyder 1987, eqs. 24-2 to 24-4).

    ``lon``, ``lat`` and ``origin = (lon0, lat0)`` in degrees; returns ``(x, y)``
    in km, x east and y north of the origin.
    """
    lam, phi = np.radians(lon), np.radians(lat)
    lam0, phi0 = np.radians(origin[0]), np.radians(origin[1])
    cos_c = np.sin(phi0) * np.sin(phi) + np.cos(phi0) * np.cos(phi) * np.cos(lam - lam0)
    k = np.sqrt(2.0 / (1.0 + cos_c))
    x = EARTH_RADIUS_KM * k * np.cos(phi) * np.sin(lam - lam0)
    y = (
        EARTH_RADIUS_KM
        * k
        * (np.cos(phi0) * np.sin(phi) - np.sin(phi0) * np.cos(phi) * np.cos(lam - lam0))
    )
    return x, y


def _parse_column(texts: list[str], codes: dict[str, float], path: Path, column: str) -> np.ndarray:
    """Map the text of a categorical column to floats, NaN for missing entries."""
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        key = text.strip().lower()
        if key in _MISSING:
            out[i] = np.nan
        elif key in codes:
            out[i] = codes[key]
        else:
            raise ValueError(
                f"{path}, line {i + 2}: unexpected {column} value {text!r}; "
                f"expected one of {sorted(codes)} or empty"
            )
    return out


def _read_lyde_csv(path: Path) -> dict[str, np.ndarray]:
    """Read ``lyde_10k.csv`` into float columns (0/1 flags, 0-3 density levels, NaN missing)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        rows = list(reader)
    expected = ("longitude", "latitude", "bio_year") + LANTERNFLY_VARIABLES
    missing = [c for c in expected if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {header}")
    text = {c: [row[header.index(c)] for row in rows] for c in expected}
    columns = {
        c: np.array(text[c], dtype=np.float64) for c in ("longitude", "latitude", "bio_year")
    }
    for c in ("lyde_present", "lyde_established"):
        columns[c] = _parse_column(text[c], _BOOLEAN, path, c)
    columns["lyde_density"] = _parse_column(text["lyde_density"], _LEVELS, path, "lyde_density")
    return columns


def load_lanternfly(
    *,
    data_home: str | os.PathLike | None = None,
    variable: str = "lyde_established",
    origin: tuple[float, float] | None = None,
) -> xr.Dataset:
    """Load the spotted lanternfly (Lycorma delicatula) records of lydemapr, 2014-2024.

    Presence, establishment and ordinal density on a 10 km grid of the
    eastern USA (De Bona et al. 2023, NeoBiota 86:151-168), read from
    ``lanternfly/lyde_10k.csv``. Longitude/latitude (WGS84 degrees) are
    projected to km with a Lambert azimuthal equal-area projection on a
    sphere of radius 6371.0088 km centred at ``origin``.

    Parameters
    ----------
    data_home : str or path-like, optional
        See :func:`get_data_home`.
    variable : {"lyde_established", "lyde_present", "lyde_density"}
        Keep the rows where this variable is not missing.
    origin : (float, float), optional
        Projection centre ``(lon, lat)`` in degrees; default Berks County,
        Pennsylvania, ``(-75.93, 40.42)``.

    Returns
    -------
    xr.Dataset
        Scattered, dim ``"obs"``, rows sorted by year (stable). Coordinates:
        ``time`` (bio_year, May 1st to April 30th, float, units "year"),
        ``x``, ``y`` (km, east and north of ``origin``), ``lon``, ``lat``
        (degrees), and the scalar ``cell_size`` = 10 km, the areal support
        of each record (:mod:`physreg.data` picks it up as the observation
        operator). Variables, NaN where missing:

        * ``lyde_present`` -- 0/1, insect recorded (possibly only a regulatory incident);
        * ``lyde_established`` -- 0/1, signs of an established population;
        * ``lyde_density`` -- ordinal 0-3 for Unpopulated/Low/Medium/High
          (``flag_values`` / ``flag_meanings`` attrs).

        attrs: ``source``, ``licence``, ``projection``, ``origin_lon``,
        ``origin_lat``, ``note``.

    Raises
    ------
    ValueError
        If ``variable`` is not one of the three, or the file has unexpected
        columns or values.
    FileNotFoundError
        If the file is not in the data home; the message says where to get it.

    See Also
    --------
    lanternfly_years : the biological years present, to take one slice per year.
    """
    if variable not in LANTERNFLY_VARIABLES:
        raise ValueError(f"variable must be one of {LANTERNFLY_VARIABLES}, got {variable!r}")
    lon0, lat0 = LANTERNFLY_ORIGIN if origin is None else (float(v) for v in origin)
    path = _data_file("lanternfly/lyde_10k.csv", data_home, _LYDE_ORIGIN)
    columns = _read_lyde_csv(path)
    keep = np.flatnonzero(~np.isnan(columns[variable]))
    keep = keep[np.argsort(columns["bio_year"][keep], kind="stable")]
    columns = {name: values[keep] for name, values in columns.items()}
    lon, lat = columns["longitude"], columns["latitude"]
    x, y = _lonlat_to_km(lon, lat, (lon0, lat0))
    projection = (
        f"Lambert azimuthal equal-area on a sphere of radius {EARTH_RADIUS_KM} km centred at "
        f"lon {lon0:g}, lat {lat0:g}; x east, y north, km"
    )
    dim = ("obs",)
    flag = {"flag_values": np.array([0, 1]), "flag_meanings": "no yes"}
    return xr.Dataset(
        {
            "lyde_present": (dim, columns["lyde_present"], {"long_name": "spotted lanternfly recorded (possibly only a regulatory incident)", **flag}),
            "lyde_established": (dim, columns["lyde_established"], {"long_name": "established population (>= 2 live individuals or an egg mass)", **flag}),
            "lyde_density": (dim, columns["lyde_density"], {
                "long_name": "ordinal population density",
                "flag_values": np.arange(len(LANTERNFLY_DENSITY_LEVELS)),
                "flag_meanings": " ".join(LANTERNFLY_DENSITY_LEVELS),
            }),
        },
        coords={
            "time": (dim, columns["bio_year"], {"units": "year", "long_name": "biological year (May 1st to April 30th)"}),
            "x": (dim, x, {"units": "km", "long_name": "easting, " + projection}),
            "y": (dim, y, {"units": "km", "long_name": "northing, " + projection}),
            "lon": (dim, lon, {"units": "degrees_east", "long_name": "longitude of the cell centre (WGS84)"}),
            "lat": (dim, lat, {"units": "degrees_north", "long_name": "latitude of the cell centre (WGS84)"}),
            "cell_size": ((), 10.0, {"units": "km", "long_name": "side of the grid cell each record covers"}),
        },
        attrs={
            "title": "Spotted lanternfly (Lycorma delicatula) in the USA, 10 km grid",
            "source": (
                "lydemapr R package (GitHub ieco-lab/lydemapr, data/lyde_10k.rda); "
                "De Bona et al. (2023), NeoBiota 86:151-168."
            ),
            "licence": "CC-BY (lydemapr)",
            "projection": projection,
            "origin_lon": lon0,
            "origin_lat": lat0,
            "rows_kept": f"rows where {variable} is not missing",
            "note": (
                "bio_year 2024 looks incomplete; survey effort is uneven and part of the spread is "
                "human-assisted long-distance jumps; the first established population was found in "
                "Berks County, Pennsylvania, in 2014."
            ),
        },
    )  # fmt: skip


def lanternfly_years(ds: xr.Dataset) -> np.ndarray:
    """Return the biological years present in a lanternfly dataset.

    Parameters
    ----------
    ds : xr.Dataset
        As returned by :func:`load_lanternfly` (or any scattered dataset with
        a ``time`` coordinate).

    Returns
    -------
    np.ndarray
        Sorted distinct years, int64. One time slice per year is then
        ``ds.isel(obs=ds.time.values == year)``; ``ds.groupby("time")`` gives all.
    """
    return np.unique(ds["time"].values).astype(np.int64)


# ===========================================================================
# Synthetic data generators (make_*)
#
# Keep the real-data loaders above this line.
# ===========================================================================
#
# Synthetic Fisher-KPP data with known truth, for tests, studies and examples:
#
#     du/dt = div(D grad u) + u (r(x) - gamma u),   no-flux boundary,
#     u(t0, x) = sum_j mass_j N(x; centre_j, width_j^2 I)   (Gaussian introductions)
#
# solved with the finite-volume solver on a fine grid, observed at sites through the
# observation operator (point values, or cell means with ``cell_size``), and noised with
# the ``sample`` method of an observation model of :mod:`physreg.likelihoods`.
#
# Noise conventions (``noise`` / ``likelihood`` argument; ``mu`` = noise-free u at the
# observations, ``max_mu`` = its maximum over all observations):
#
# * "gaussian"   y ~ Normal(mu, sigma), sigma = noise_level * max_mu (absolute, constant sd);
# * "lognormal"  log y ~ Normal(log mu, sigma), sigma = noise_level (about noise_level
#                relative noise);
# * "poisson"    y ~ Poisson(kappa mu); kappa as given, or kappa = 1 / (noise_level^2 max_mu)
#                so that the coefficient of variation at the largest density is noise_level;
# * "negbin"     negative binomial, mean kappa mu, variance m + m^2 / phi; kappa as Poisson,
#                phi as given or 10;
# * "binomial"   y ~ Binomial(trials, 1 - exp(-kappa mu)), trials as given or 10 (stored
#                as the variable ``trials``); kappa as given or 3 / max_mu (p = 0.95 at the
#                largest density); noise_level is not used;
# * "bernoulli"  presence y in {0, 1}, p = 1 - exp(-kappa mu); kappa as binomial.
#
# noise_level = 0 gives exact data for "gaussian" and "lognormal".
#
# Each dataset stores the truth as scalar attrs ``truth_<param>`` (netCDF attrs cannot be
# dicts; read them with :func:`truth_of`) and the model specification as attrs (domain,
# boundary, initial condition, covariate links, likelihood and its fixed settings
# ``likelihood_<field>``); :func:`spec_of` rebuilds the model and observation model.
# The noise-free values are the variable ``u_true``.

__all__ += [
    "EXAMPLES",
    "load_example",
    "make_example",
    "make_fisher_kpp_1d",
    "make_fisher_kpp_2d",
    "spec_of",
    "truth_of",
]

_NOISE_NAMES = {
    "gaussian": "gaussian",
    "lognormal": "lognormal",
    "poisson": "poisson",
    "negbin": "negbin",
    "negative_binomial": "negbin",
    "binomial": "binomial",
    "bernoulli": "bernoulli",
}
_COUNTS = ("poisson", "negbin")
_PRESENCE = ("binomial", "bernoulli")
_PRESENCE_P_MAX = 0.95  # default detection probability at the largest density
_DEFAULT_PHI = 10.0
_DEFAULT_TRIALS = 10
_DRAW_BLOCK = 1024  # noise is drawn in blocks of this size (see _draw)
_NOISE_CONVENTION = {
    "gaussian": "y ~ Normal(u, sigma), sigma = noise_level * max(u at the observations)",
    "lognormal": "log y ~ Normal(log u, sigma), sigma = noise_level",
    "poisson": "y ~ Poisson(kappa * u)",
    "negbin": "y ~ NegativeBinomial(mean m = kappa * u, variance m + m^2 / phi)",
    "binomial": "y ~ Binomial(trials, 1 - exp(-kappa * u))",
    "bernoulli": "y ~ Bernoulli(1 - exp(-kappa * u))",
}
_TARGET_META = {
    "gaussian": ("density with Gaussian noise", None),
    "lognormal": ("density with log-normal noise", None),
    "poisson": ("Poisson count, mean kappa * u", "count"),
    "negbin": ("negative-binomial count, mean kappa * u", "count"),
    "binomial": ("detections out of `trials`, p = 1 - exp(-kappa * u)", "count"),
    "bernoulli": ("presence (1) / absence (0), p = 1 - exp(-kappa * u)", "1"),
}


# ---- argument checks ------------------------------------------------------------------
def _number(name: str, value, *, low=None, strict=True) -> float:
    """``value`` as a finite float, optionally ``> low`` (``>= low`` when not strict)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value:g}")
    return value


def _integer(name: str, value, *, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _pair(name: str, bounds) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {bounds!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} = {bounds!r} must be finite")
    if not low < high:
        raise ValueError(f"{name} = {bounds!r} is inverted or empty: need low < high")
    return low, high


def _noise_name(argname: str, value) -> str:
    key = value.strip().lower().replace("-", "_") if isinstance(value, str) else None
    if key not in _NOISE_NAMES:
        raise ValueError(
            f"{argname} must be one of {sorted(set(_NOISE_NAMES.values()))}, got {value!r}"
        )
    return _NOISE_NAMES[key]


def _seed(random_state) -> int:
    """The integer seed; ``None`` draws one (stored in attrs, so the data can be remade)."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state must be an int or None, got {random_state!r}")
    if random_state < 0:
        raise ValueError(f"random_state must be >= 0, got {random_state}")
    return int(random_state)


def _competition(gamma, K) -> tuple[str, float]:
    if gamma is not None and K is not None:
        raise ValueError("give gamma or K (carrying capacity, gamma = r / K), not both")
    if K is not None:
        return "K", _number("K", K, low=0.0)
    return "gamma", _number("gamma", 1.0 if gamma is None else gamma, low=0.0)


def _times(n_times, t0, t_max) -> tuple[np.ndarray, float]:
    n_times = _integer("n_times", n_times)
    t0 = _number("t0", t0, low=0.0, strict=False)
    t_max = _number("t_max", t_max)
    if not t_max > t0:
        raise ValueError(f"t_max must be > t0 = {t0:g}, got {t_max:g}")
    return np.linspace(t0 + (t_max - t0) / n_times, t_max, n_times), t0


def _introductions(initial, domain: Domain) -> list[dict[str, float]]:
    """Check the Gaussian introductions: a mapping or a list of mappings."""
    axes = ("x",) if domain.ndim == 1 else ("x", "y")
    keys = axes + ("width", "mass")
    items = [initial] if isinstance(initial, Mapping) else list(initial)
    if not items or not all(isinstance(it, Mapping) for it in items):
        raise ValueError(
            f"initial must be a mapping with keys {keys} (a Gaussian introduction) or a list of "
            f"them, got {initial!r}"
        )
    out = []
    for j, item in enumerate(items):
        where = "initial" if len(items) == 1 else f"initial[{j}]"
        if set(item) != set(keys):
            raise ValueError(f"{where} must have the keys {keys}, got {tuple(item)}")
        ic = {a: _number(f"{where}[{a!r}]", item[a]) for a in axes}
        for a in axes:
            low, high = getattr(domain, a)
            if not low <= ic[a] <= high:
                raise ValueError(
                    f"{where}[{a!r}] = {ic[a]:g} is outside the domain [{low:g}, {high:g}]"
                )
        ic["width"] = _number(f"{where}['width']", item["width"], low=0.0)
        ic["mass"] = _number(f"{where}['mass']", item["mass"], low=0.0)
        out.append(ic)
    return out


# ---- the pieces ---------------------------------------------------------------------------
def _observation_model(
    noise: str, mu: np.ndarray, *, noise_level: float, kappa, phi, trials
) -> tuple[ObservationModel | None, dict[str, float], dict[str, float]]:
    """The observation model, its nuisance values (truth) and extra settings (trials)."""
    max_mu = float(np.max(mu))
    if noise in _COUNTS + _PRESENCE and kappa is None and not max_mu > 0:
        raise ValueError(
            "the noise-free density is zero at every observation, so kappa has no default; "
            "choose sites and times the population reaches, or pass kappa"
        )
    if noise == "gaussian":
        sigma = noise_level * max_mu
        return (Gaussian(sigma=sigma) if sigma > 0 else None), {"sigma": sigma}, {}
    if noise == "lognormal":
        return (
            (LogNormal(sigma=noise_level) if noise_level > 0 else None),
            {"sigma": noise_level},
            {},
        )
    if noise in _COUNTS:
        if kappa is None:
            if not noise_level > 0:
                raise ValueError(
                    f"noise_level must be > 0 for {noise!r} noise unless kappa is given"
                )
            kappa = 1.0 / (noise_level**2 * max_mu)
        if noise == "poisson":
            return Poisson(kappa=kappa), {"kappa": kappa}, {}
        phi = _DEFAULT_PHI if phi is None else phi
        return NegativeBinomial(kappa=kappa, phi=phi), {"kappa": kappa, "phi": phi}, {}
    if kappa is None:
        kappa = -math.log1p(-_PRESENCE_P_MAX) / max_mu
    if noise == "bernoulli":
        return Bernoulli(kappa=kappa), {"kappa": kappa}, {}
    trials = _DEFAULT_TRIALS if trials is None else trials
    return Binomial(kappa=kappa), {"kappa": kappa}, {"trials": float(trials)}


def _check_noise_args(noise, noise_level, kappa, phi, trials):
    noise_level = _number("noise_level", noise_level, low=0.0, strict=False)
    kappa = None if kappa is None else _number("kappa", kappa, low=0.0)
    phi = None if phi is None else _number("phi", phi, low=0.0)
    trials = None if trials is None else _integer("trials", trials)
    return noise_level, kappa, phi, trials


def _simulate(model, params, times, t0, grid, method, tidx, x, y=None, *, cov=None, cell_size=None):
    """Noise-free u at the observations (time index ``tidx``, positions ``x``[, ``y``])."""
    shape = grid if np.ndim(grid) else int(grid)
    solver = FiniteVolumeSolver(model, shape, max_step=float(times[-1] - t0) / 400.0, method=method)
    cov_grid = None
    if cov is not None:
        cov_grid = {
            name: solver.interpolate_field(var.values, var["x"].values, var["y"].values)
            for name, var in cov.data_vars.items()
        }
    us = solver.solve(params, times, t0=t0, cov=cov_grid)
    op = observation_operator(solver, tidx, x, y, cell_size=cell_size)
    return np.asarray(op.apply(us), dtype=np.float64), solver


@functools.partial(jax.jit, static_argnums=0)
def _sample(template, key, mu, nuisance, extras):
    return template.sample(key, mu, nuisance, extras)


def _draw(obs_model, mu, nuisance, extras, key) -> np.ndarray:
    """``obs_model.sample`` in one jitted program (much faster to compile than op by op).

    The nuisance values are traced (the model's fields are set to None), so one compilation
    serves every value of sigma, kappa or phi.
    """
    if obs_model is None:  # noise_level = 0
        return mu.copy()
    template = dataclasses.replace(obs_model, **dict.fromkeys(obs_model._NUISANCE_FIELDS))
    nuisance = {k: jnp.asarray(v, dtype=float) for k, v in nuisance.items()}
    extras = {k: jnp.asarray(v, dtype=float) for k, v in extras.items()}
    # pad to a multiple of _DRAW_BLOCK (zero density, a valid input of every model) so that
    # datasets of different sizes share one compilation; the padding is deterministic
    n = mu.size
    padded = np.zeros(-(-n // _DRAW_BLOCK) * _DRAW_BLOCK)
    padded[:n] = mu
    y = _sample(template, key, jnp.asarray(padded), nuisance, extras)
    return np.asarray(y, dtype=np.float64)[:n]


def _spec_attrs(
    *,
    title,
    generator,
    call,
    seed,
    domain: Domain,
    competition,
    ics,
    t0,
    noise,
    noise_level,
    nuisance,
    settings,
    D_covariates=(),
    r_covariates=(),
    solver,
    target,
    truth,
) -> dict:
    from . import __version__

    attrs = {
        "title": title,
        "source": f"synthetic, physreg {__version__}: physreg.datasets.{generator}({call})",
        "random_state": seed,
        "model": "fisher_kpp",
        "equation": "du/dt = div(D(x) grad u) + u (r(x) - gamma u)",
        "domain_x": np.array(domain.x),
    }
    if domain.y is not None:
        attrs["domain_y"] = np.array(domain.y)
    attrs.update(
        boundary="neumann",
        competition=competition,
        D_link="log",
        D_covariates=" ".join(D_covariates),
        r_link="identity",
        r_covariates=" ".join(r_covariates),
        initial="gaussian_introductions",
        n_introductions=len(ics),
        t0=float(t0),
        target=target,
        likelihood=noise,
        noise_level=float(noise_level),
        noise_convention=_NOISE_CONVENTION[noise],
    )
    for name, value in {**nuisance, **settings}.items():
        attrs[f"likelihood_{name}"] = float(value)
    attrs.update(
        solver=f"FiniteVolumeSolver(shape={solver.shape}, method={solver.method!r}, "
        f"max_step={solver.max_step:g})",
    )
    for name, value in {**truth, **nuisance}.items():
        attrs[f"truth_{name}"] = float(value)
    return attrs


def _truth_params(D, r, competition, comp_value, ics, ndim, extra=None) -> dict[str, float]:
    truth = {"D": D, "r": r, competition: comp_value}
    truth.update(extra or {})
    for j, ic in enumerate(ics):
        p = "ic" if len(ics) == 1 else f"ic{j}"
        truth[f"{p}_x"] = ic["x"]
        if ndim == 2:
            truth[f"{p}_y"] = ic["y"]
        truth[f"{p}_width"] = ic["width"]
        truth[f"{p}_mass"] = ic["mass"]
    return truth


def _call_repr(**kwargs) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _target_var(dims, values, noise, units):
    long_name, unit = _TARGET_META[noise]
    return (dims, values, {"units": unit or units, "long_name": long_name})


# ---- 1-D ------------------------------------------------------------------------------------
def make_fisher_kpp_1d(
    *,
    n_times: int = 8,
    n_sites: int = 25,
    D: float = 0.1,
    r: float = 1.0,
    gamma: float | None = None,
    K: float | None = None,
    noise: str = "gaussian",
    noise_level: float = 0.05,
    kappa: float | None = None,
    phi: float | None = None,
    trials: int | None = None,
    domain: tuple[float, float] = (0.0, 10.0),
    t0: float = 0.0,
    t_max: float = 10.0,
    initial: Mapping | list | None = None,
    layout: str = "gridded",
    target: str = "density",
    random_state: int | None = 0,
    grid: int = 512,
) -> xr.Dataset:
    """Synthetic 1-D Fisher-KPP observations with known parameters.

    The defaults are the yardstick case of ``DESIGN.md``: 8 times x 25 sites with 5 %
    Gaussian noise. A Gaussian introduction (centre 2, width 0.3, mass 0.5) at ``t0 = 0``
    spreads on ``[0, 10]`` with ``D = 0.1``, ``r = 1``, ``gamma = 1``; the right-hand front
    (speed about ``2 sqrt(r D) = 0.63``; u = 0.5) moves from x ~ 2.5 at the first time to
    x ~ 6.6 at ``t_max = 10``, while the peak density grows from 0.6 to 1, so both ``D`` and
    ``r`` are identifiable (a least-squares fit through the solver recovers D to about 4 %
    and r to under 1 %, one standard error).

    Parameters
    ----------
    n_times : int
        Observation times ``linspace(t0 + (t_max - t0) / n_times, t_max, n_times)`` (day).
    n_sites : int
        Sites per time. ``layout="gridded"``: the centres of ``n_sites`` equal bins of the
        domain, the same at every time. ``layout="scattered"``: uniform random positions,
        drawn anew at each time (sorted within a time).
    D, r : float
        Diffusion coefficient (km^2/day, > 0) and growth rate (1/day).
    gamma, K : float, optional
        Competition ``gamma`` (default 1) or carrying capacity ``K`` (gamma = r / K); not both.
    noise : {"gaussian", "lognormal", "poisson", "negbin", "binomial", "bernoulli"}
        Observation model (``max u``: the largest noise-free value at the observations):
        ``"gaussian"`` has the constant sd ``sigma = noise_level * max u``; ``"lognormal"``
        has log-scale sd ``noise_level`` (relative noise); counts use ``kappa`` or, if None,
        ``kappa = 1 / (noise_level^2 max u)`` (coefficient of variation ``noise_level`` at the
        largest density); presence uses ``kappa`` or ``-log(0.05) / max u`` (p = 0.95 there).
    noise_level : float
        >= 0; 0 gives exact data for "gaussian" and "lognormal".
    kappa, phi, trials : optional
        Count / detection scale, negative-binomial size (default 10), binomial trials
        (default 10; stored as the variable ``trials``).
    domain : (float, float)
        The interval, km; no-flux ends.
    t0, t_max : float
        Introduction date and last observation time (day), ``0 <= t0 < t_max``.
    initial : mapping or list of mappings, optional
        Gaussian introduction(s) ``{"x": ..., "width": ..., "mass": ...}`` (mass in u x km);
        default ``{"x": 2.0, "width": 0.3, "mass": 0.5}``.
    layout : {"gridded", "scattered"}
    target : str
        Name of the observed variable (the estimators' ``target``).
    random_state : int or None
        Seed of every random draw; None draws one and stores it in ``attrs["random_state"]``.
    grid : int
        Cells of the finite-volume solver (a finer grid than a fit would use); solved with
        TR-BDF2 line solves and at most 400 steps over the time span.

    Returns
    -------
    xr.Dataset
        Gridded: ``target`` and ``u_true`` (noise-free u) on ``("time", "x")``. Scattered:
        on ``"obs"``, with coordinates ``time``, ``x``. Coordinates carry ``units``
        ("day", "km"). attrs: the truth as ``truth_<param>`` (:func:`truth_of`), the model
        specification (:func:`spec_of`), ``random_state`` and the generating call.

    Raises
    ------
    ValueError
        Naming the argument: non-positive ``D``, ``gamma``, ``K``, ``kappa``, ``phi``,
        negative ``noise_level``, unknown ``noise`` or ``layout``, ``n_sites`` or ``n_times``
        < 1, inverted ``domain``, ``t_max <= t0``, introductions outside the domain.
    """
    seed = _seed(random_state)
    n_sites = _integer("n_sites", n_sites)
    D = _number("D", D, low=0.0)
    r = _number("r", r)
    competition, comp_value = _competition(gamma, K)
    noise = _noise_name("noise", noise)
    noise_level, kappa, phi, trials = _check_noise_args(noise, noise_level, kappa, phi, trials)
    dom = Domain(_pair("domain", domain))
    times, t0 = _times(n_times, t0, t_max)
    ics = _introductions({"x": 2.0, "width": 0.3, "mass": 0.5} if initial is None else initial, dom)
    if layout not in ("gridded", "scattered"):
        raise ValueError(f"layout must be 'gridded' or 'scattered', got {layout!r}")
    if not isinstance(target, str) or not target or target in ("time", "x", "obs", "u_true"):
        raise ValueError(
            f"target must be a variable name other than time, x, obs, u_true; got {target!r}"
        )
    grid = _integer("grid", grid, low=3)

    site_ss, noise_ss = np.random.SeedSequence(seed).spawn(2)
    low, high = dom.x
    nt = len(times)
    if layout == "gridded":
        sites = low + (np.arange(n_sites) + 0.5) * (high - low) / n_sites
        tidx, x = np.repeat(np.arange(nt), n_sites), np.tile(sites, nt)
    else:
        rng = np.random.default_rng(site_ss)
        x = np.sort(rng.uniform(low, high, size=(nt, n_sites)), axis=1).ravel()
        tidx = np.repeat(np.arange(nt), n_sites)

    model = ReactionDiffusion(
        dom, competition=competition, initial=GaussianIntroductions(len(ics), t0)
    )
    truth = _truth_params(D, r, competition, comp_value, ics, 1)
    mu, solver = _simulate(model, truth, times, t0, grid, "tridiagonal", tidx, x)
    obs_model, nuisance, settings = _observation_model(
        noise, mu, noise_level=noise_level, kappa=kappa, phi=phi, trials=trials
    )
    key = jax.random.key(int(noise_ss.generate_state(1)[0]))
    y = _draw(obs_model, mu, nuisance, settings, key)

    units = {
        "time": {"units": "day", "long_name": "time"},
        "x": {"units": "km", "long_name": "position"},
    }
    u_attrs = {"units": "individuals/km", "long_name": "noise-free model density u (truth)"}
    if layout == "gridded":
        dims, shape = ("time", "x"), (nt, n_sites)
        coords = {"time": ("time", times, units["time"]), "x": ("x", sites, units["x"])}
    else:
        dims, shape = ("obs",), (nt * n_sites,)
        coords = {"time": (dims, times[tidx], units["time"]), "x": (dims, x, units["x"])}
    data_vars = {
        target: _target_var(dims, y.reshape(shape), noise, "individuals/km"),
        "u_true": (dims, mu.reshape(shape), u_attrs),
    }
    if "trials" in settings:
        data_vars["trials"] = (
            dims,
            np.full(shape, settings["trials"]),
            {"units": "1", "long_name": "binomial trials"},
        )
    call = _call_repr(
        n_times=n_times,
        n_sites=n_sites,
        D=D,
        r=r,
        gamma=gamma,
        K=K,
        noise=noise,
        noise_level=noise_level,
        kappa=kappa,
        phi=phi,
        trials=trials,
        domain=domain,
        t0=t0,
        t_max=t_max,
        initial=initial,
        layout=layout,
        target=target,
        random_state=seed,
        grid=grid,
    )
    attrs = _spec_attrs(
        title=f"Synthetic 1-D Fisher-KPP, {layout} {noise} observations",
        generator="make_fisher_kpp_1d",
        call=call,
        seed=seed,
        domain=dom,
        competition=competition,
        ics=ics,
        t0=t0,
        noise=noise,
        noise_level=noise_level,
        nuisance=nuisance,
        settings=settings,
        solver=solver,
        target=target,
        truth=truth,
    )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# ---- 2-D ------------------------------------------------------------------------------------
def _smooth_field(rng, y, x, n_waves: int = 8) -> np.ndarray:
    """A smooth random field on the grid (y, x): random plane waves, standardised.

    Wavelengths between 0.4 and 1 times the longer side of the domain; the result has mean 0
    and standard deviation 1 over the grid.
    """
    L = max(x[-1] - x[0], y[-1] - y[0])
    wavelength = rng.uniform(0.4, 1.0, n_waves) * L
    angle = rng.uniform(0.0, 2 * np.pi, n_waves)
    phase = rng.uniform(0.0, 2 * np.pi, n_waves)
    amp = rng.normal(size=n_waves)
    k = 2 * np.pi / wavelength
    yy, xx = np.meshgrid(y, x, indexing="ij")
    z = sum(
        a * np.cos(kk * (np.cos(t) * xx + np.sin(t) * yy) + p)
        for a, kk, t, p in zip(amp, k, angle, phase, strict=True)
    )
    return (z - z.mean()) / z.std()


def make_fisher_kpp_2d(
    *,
    n_sites: int = 60,
    n_times: int = 5,
    D: float = 1.0,
    r: float = 1.0,
    gamma: float | None = None,
    K: float | None = None,
    covariate: str = "elevation",
    r_cov: float = -0.3,
    D_cov: float = 0.0,
    likelihood: str = "poisson",
    noise_level: float = 0.05,
    kappa: float | None = 10.0,
    phi: float | None = None,
    trials: int | None = None,
    cell_size: float | None = None,
    sites: str = "fixed",
    domain: Mapping[str, tuple[float, float]] | None = None,
    t0: float = 0.0,
    t_max: float = 8.0,
    initial: Mapping | list | None = None,
    covariate_shape: tuple[int, int] = (25, 41),
    target: str = "density",
    random_state: int | None = 0,
    grid: tuple[int, int] = (64, 96),
) -> tuple[xr.Dataset, xr.Dataset]:
    """Synthetic 2-D Fisher-KPP observations on a rectangle, with a spatial covariate.

    ``r(x) = r + r_cov z(x)`` and ``log D(x) = log D + D_cov z(x)``, where ``z`` is a smooth
    random field (mean 0, sd 1 on its grid) named ``covariate``. By default a Gaussian
    introduction (centre (4, 6), width 0.5, mass 5) at ``t0 = 0`` spreads on the
    20 x 12 km rectangle with ``D = 1``, ``r = 1``, ``r_<covariate> = -0.3``, ``gamma = 1``,
    observed at 60 fixed sites at t = 1.6, 3.2, ..., 8 (year) as Poisson counts of mean
    ``10 u``; the area where u > 0.5 grows from 2 % to 70 % of the sites, the front
    reaching x ~ 13.5 km.

    Parameters
    ----------
    n_sites, n_times : int
        Sites per time and number of times ``linspace(t0 + (t_max - t0) / n_times, t_max,
        n_times)``.
    D, r, gamma, K :
        As :func:`make_fisher_kpp_1d` (units km^2/year, 1/year).
    covariate : str
        Name of the covariate (and of the parameters ``r_<covariate>``, ``D_<covariate>``).
    r_cov, D_cov : float
        Coefficients of the covariate in the growth rate (identity link) and in ``log D``.
        ``D_cov = 0`` (default) keeps D constant and out of the truth.
    likelihood : {"poisson", "negbin", "binomial", "bernoulli", "gaussian", "lognormal"}
        Observation model; conventions of :func:`make_fisher_kpp_1d`. ``kappa`` defaults to
        10 here (expected count 10 at u = 1); pass ``kappa=None`` for the 1-D rules.
    noise_level, kappa, phi, trials :
        As :func:`make_fisher_kpp_1d`.
    cell_size : float, optional
        Areal observations: each is the mean of u over a square cell of this side (km)
        centred at the site, stored as the scalar coordinate ``cell_size``.
    sites : {"fixed", "random"}
        The same ``n_sites`` uniform random locations at every time, or new ones at each time.
    domain : mapping, optional
        ``{"x": (low, high), "y": (low, high)}`` in km; default ``{"x": (0, 20), "y": (0, 12)}``.
    t0, t_max : float
        Introduction date and last observation time (year).
    initial : mapping or list of mappings, optional
        Gaussian introduction(s) ``{"x", "y", "width", "mass"}``; default
        ``{"x": 4.0, "y": 6.0, "width": 0.5, "mass": 5.0}``.
    covariate_shape : (int, int)
        Points (ny, nx) of the covariate grid, which spans the domain edge to edge.
    target : str
        Name of the observed variable.
    random_state : int or None
        Seed of the covariate field, the sites and the noise (independent streams).
    grid : (int, int)
        Solver cells (ny, nx); solved with TR-BDF2 line solves and at most 400 steps.

    Returns
    -------
    obs : xr.Dataset
        Scattered: ``target`` and ``u_true`` on ``"obs"``, coordinates ``time`` (year),
        ``x``, ``y`` (km), ``site`` (site index) and ``cell_size`` if areal. attrs as
        :func:`make_fisher_kpp_1d`, with ``r_covariates`` / ``D_covariates``.
    covariates : xr.Dataset
        The covariate on ``("y", "x")``, covering the domain.

    Raises
    ------
    ValueError
        As :func:`make_fisher_kpp_1d`, and for an unknown ``sites``, a bad ``covariate``
        name, ``cell_size <= 0``, a covariate grid under 2 x 2.
    """
    seed = _seed(random_state)
    n_sites = _integer("n_sites", n_sites)
    D = _number("D", D, low=0.0)
    r = _number("r", r)
    r_cov = _number("r_cov", r_cov)
    D_cov = _number("D_cov", D_cov)
    competition, comp_value = _competition(gamma, K)
    noise = _noise_name("likelihood", likelihood)
    noise_level, kappa, phi, trials = _check_noise_args(noise, noise_level, kappa, phi, trials)
    domain = {"x": (0.0, 20.0), "y": (0.0, 12.0)} if domain is None else domain
    if not isinstance(domain, Mapping) or set(domain) != {"x", "y"}:
        raise ValueError(
            f"domain must be a mapping {{'x': (low, high), 'y': (low, high)}}, got {domain!r}"
        )
    dom = Domain(_pair("domain['x']", domain["x"]), _pair("domain['y']", domain["y"]))
    times, t0 = _times(n_times, t0, t_max)
    default_ic = {"x": 4.0, "y": 6.0, "width": 0.5, "mass": 5.0}
    ics = _introductions(default_ic if initial is None else initial, dom)
    if (
        not isinstance(covariate, str)
        or not covariate.isidentifier()
        or covariate
        in (
            "x",
            "y",
            "time",
            "obs",
            "site",
            "cell_size",
            "u_true",
            target,
        )
    ):
        raise ValueError(
            f"covariate must be an identifier other than a coordinate name, got {covariate!r}"
        )
    if sites not in ("fixed", "random"):
        raise ValueError(f"sites must be 'fixed' or 'random', got {sites!r}")
    if cell_size is not None:
        cell_size = _number("cell_size", cell_size, low=0.0)
    if (
        not isinstance(target, str)
        or not target
        or target in ("time", "x", "y", "obs", "site", "u_true")
    ):
        raise ValueError(f"target must be a variable name other than a coordinate, got {target!r}")
    try:
        cny, cnx = (_integer("covariate_shape", n, low=2) for n in covariate_shape)
        gny, gnx = (_integer("grid", n, low=3) for n in grid)
    except TypeError:
        raise ValueError("covariate_shape and grid must be pairs of integers (ny, nx)") from None

    cov_ss, site_ss, noise_ss = np.random.SeedSequence(seed).spawn(3)
    cy = np.linspace(*dom.y, cny)
    cx = np.linspace(*dom.x, cnx)
    z = _smooth_field(np.random.default_rng(cov_ss), cy, cx)
    km = {"units": "km"}
    cov = xr.Dataset(
        {
            covariate: (
                ("y", "x"),
                z,
                {
                    "units": "1",
                    "long_name": f"standardised {covariate} (mean 0, sd 1 on this grid)",
                },
            )
        },
        coords={
            "y": ("y", cy, {**km, "long_name": "northing"}),
            "x": ("x", cx, {**km, "long_name": "easting"}),
        },
        attrs={
            "title": f"Synthetic covariate {covariate!r}, smooth random field",
            "random_state": seed,
        },
    )

    rng = np.random.default_rng(site_ss)
    nt = len(times)
    n_draw = n_sites if sites == "fixed" else n_sites * nt
    sx = rng.uniform(*dom.x, n_draw)
    sy = rng.uniform(*dom.y, n_draw)
    site = np.tile(np.arange(n_sites), nt) if sites == "fixed" else np.arange(n_draw)
    x, y = sx[site], sy[site]
    tidx = np.repeat(np.arange(nt), n_sites)

    D_covs = (covariate,) if D_cov != 0 else ()
    model = ReactionDiffusion(
        dom,
        D=Link("log", D_covs),
        r=Link("identity", (covariate,)),
        competition=competition,
        initial=GaussianIntroductions(len(ics), t0),
    )
    extra = {f"r_{covariate}": r_cov}
    if D_covs:
        extra[f"D_{covariate}"] = D_cov
    truth = _truth_params(D, r, competition, comp_value, ics, 2, extra)
    mu, solver = _simulate(
        model, truth, times, t0, (gny, gnx), "tridiagonal", tidx, x, y, cov=cov, cell_size=cell_size
    )
    obs_model, nuisance, settings = _observation_model(
        noise, mu, noise_level=noise_level, kappa=kappa, phi=phi, trials=trials
    )
    y_obs = _draw(
        obs_model, mu, nuisance, settings, jax.random.key(int(noise_ss.generate_state(1)[0]))
    )

    dims = ("obs",)
    coords = {
        "time": (dims, times[tidx], {"units": "year", "long_name": "time"}),
        "x": (dims, x, {**km, "long_name": "easting"}),
        "y": (dims, y, {**km, "long_name": "northing"}),
        "site": (
            dims,
            site,
            {"long_name": "site index" + (" (fixed sites)" if sites == "fixed" else "")},
        ),
    }
    if cell_size is not None:
        coords["cell_size"] = (
            (),
            cell_size,
            {**km, "long_name": "side of the square cell each observation averages over"},
        )
    data_vars = {
        target: _target_var(dims, y_obs, noise, "individuals/km^2"),
        "u_true": (
            dims,
            mu,
            {"units": "individuals/km^2", "long_name": "noise-free model density u (truth)"},
        ),
    }
    if "trials" in settings:
        data_vars["trials"] = (
            dims,
            np.full(mu.shape, settings["trials"]),
            {"units": "1", "long_name": "binomial trials"},
        )
    call = _call_repr(
        n_sites=n_sites,
        n_times=n_times,
        D=D,
        r=r,
        gamma=gamma,
        K=K,
        covariate=covariate,
        r_cov=r_cov,
        D_cov=D_cov,
        likelihood=noise,
        noise_level=noise_level,
        kappa=kappa,
        phi=phi,
        trials=trials,
        cell_size=cell_size,
        sites=sites,
        domain=domain,
        t0=t0,
        t_max=t_max,
        initial=initial,
        covariate_shape=covariate_shape,
        target=target,
        random_state=seed,
        grid=grid,
    )
    attrs = _spec_attrs(
        title=f"Synthetic 2-D Fisher-KPP with covariate {covariate!r}, {noise} observations",
        generator="make_fisher_kpp_2d",
        call=call,
        seed=seed,
        domain=dom,
        competition=competition,
        ics=ics,
        t0=t0,
        noise=noise,
        noise_level=noise_level,
        nuisance=nuisance,
        settings=settings,
        D_covariates=D_covs,
        r_covariates=(covariate,),
        solver=solver,
        target=target,
        truth=truth,
    )
    attrs["sites"] = sites
    cov.attrs["source"] = attrs["source"]
    return xr.Dataset(data_vars, coords=coords, attrs=attrs), cov


# ---- reading the truth and the specification back ------------------------------------------
def truth_of(ds: xr.Dataset) -> dict[str, float]:
    """The true parameter values of a synthetic dataset, ``{name: value}``.

    Reads the ``truth_<name>`` attrs written by the ``make_*`` generators: the model
    parameters (``D``, ``r``, ``gamma`` or ``K``, ``r_<cov>``, ``D_<cov>``, ``ic_*``) and the
    observation model's nuisance values (``sigma``, ``kappa``, ``phi``), in the estimators'
    parameter names and the data's units.

    Raises
    ------
    ValueError
        If ``ds`` has no ``truth_*`` attrs (not made by a physreg generator).
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
    truth = {k[len("truth_") :]: float(v) for k, v in ds.attrs.items() if k.startswith("truth_")}
    if not truth:
        raise ValueError("ds has no truth_* attrs: it was not made by a physreg make_* generator")
    return truth


_OBS_MODELS = {
    "gaussian": Gaussian,
    "lognormal": LogNormal,
    "poisson": Poisson,
    "negbin": NegativeBinomial,
    "binomial": Binomial,
    "bernoulli": Bernoulli,
}


def spec_of(ds: xr.Dataset) -> tuple[ReactionDiffusion, ObservationModel]:
    """The model and observation model that generated a synthetic dataset.

    Returns
    -------
    model : ReactionDiffusion
        Domain, no-flux boundary, competition form, covariate links and a
        :class:`~physreg.model.GaussianIntroductions` initial condition at the stored ``t0``.
    observation_model : ObservationModel
        With its nuisance parameters fixed at the generating values (``sigma`` is left to be
        fitted when the data are exact, ``noise_level = 0``); the ``trials`` of a binomial are
        the variable ``trials``. Replace a field by ``None`` with :func:`dataclasses.replace` to
        fit it.

    Raises
    ------
    ValueError
        If the attrs of a physreg generator are missing.
    """
    a = ds.attrs
    needed = ("domain_x", "competition", "initial", "t0", "likelihood", "n_introductions")
    missing = [k for k in needed if k not in a]
    if missing or a.get("initial") != "gaussian_introductions":
        raise ValueError(
            f"ds lacks the specification attrs {missing or ['initial']} of a physreg generator"
        )
    dom = Domain(
        tuple(np.asarray(a["domain_x"], float)),
        tuple(np.asarray(a["domain_y"], float)) if "domain_y" in a else None,
    )
    covs = lambda key: tuple(str(a.get(key, "")).split())
    model = ReactionDiffusion(
        dom,
        D=Link("log", covs("D_covariates")),
        r=Link("identity", covs("r_covariates")),
        competition=str(a["competition"]),
        boundary=str(a.get("boundary", "neumann")),
        initial=GaussianIntroductions(int(a["n_introductions"]), float(a["t0"])),
    )
    cls = _OBS_MODELS[str(a["likelihood"])]
    fixed = {
        f: float(a[f"likelihood_{f}"])
        for f in cls._NUISANCE_FIELDS
        if f"likelihood_{f}" in a and float(a[f"likelihood_{f}"]) > 0
    }
    return model, cls(**fixed)


# ---- bundled examples -----------------------------------------------------------------------
#: The canonical synthetic datasets shipped in the repository's ``data/`` folder: name ->
#: generator, its keyword arguments and the file names (obs[, covariates]).
#: ``data/make_data.py`` writes them; :func:`load_example` reads them.
EXAMPLES: dict[str, dict] = {
    "fkpp1d_gaussian": {
        "generator": "make_fisher_kpp_1d",
        "kwargs": {"random_state": 0},
        "files": ("fkpp1d_gaussian.nc",),
    },
    "fkpp1d_scattered_poisson": {
        "generator": "make_fisher_kpp_1d",
        "kwargs": {"layout": "scattered", "noise": "poisson", "kappa": 50.0, "random_state": 1},
        "files": ("fkpp1d_scattered_poisson.nc",),
    },
    "fkpp2d_poisson": {
        "generator": "make_fisher_kpp_2d",
        "kwargs": {"random_state": 0},
        "files": ("fkpp2d_poisson.nc", "fkpp2d_covariates.nc"),
    },
}

#: Where the bundled files live in a source checkout.
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "data"


def _example_entry(name: str) -> dict:
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; available: {sorted(EXAMPLES)}")
    return EXAMPLES[name]


def make_example(name: str) -> xr.Dataset | tuple[xr.Dataset, xr.Dataset]:
    """Generate the example ``name`` in memory (the same call and seed as the bundled file)."""
    entry = _example_entry(name)
    return globals()[entry["generator"]](**entry["kwargs"])


def load_example(name: str) -> xr.Dataset | tuple[xr.Dataset, xr.Dataset]:
    """Load a bundled synthetic dataset.

    Parameters
    ----------
    name : {"fkpp1d_gaussian", "fkpp1d_scattered_poisson", "fkpp2d_poisson"}
        See ``data/README.md`` and :data:`EXAMPLES`.

    Returns
    -------
    xr.Dataset, or (obs, covariates) for the 2-D example.

    Notes
    -----
    The files are read from ``data/`` beside the package (:data:`EXAMPLES_DIR`), which
    exists in a source checkout. Where it does not (an installed wheel), the dataset is
    regenerated in memory by :func:`make_example`, with the same generator call and seed
    that wrote the files: the numbers are the same, up to the platform's floating point.
    """
    entry = _example_entry(name)
    paths = [EXAMPLES_DIR / f for f in entry["files"]]
    if not all(p.is_file() for p in paths):
        return make_example(name)
    out = tuple(xr.load_dataset(p, engine="h5netcdf") for p in paths)
    return out[0] if len(out) == 1 else out
