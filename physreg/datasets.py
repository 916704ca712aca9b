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
import os
from pathlib import Path

import numpy as np
import xarray as xr

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
# Reserved: the make_* generators are added here by their own change. Keep the
# real-data loaders above this line.
# ===========================================================================
