"""Write the bundled synthetic datasets of physreg (netCDF, deterministic).

Run from anywhere, with physreg importable (e.g. an editable install)::

    python data/make_data.py

Each dataset is ``physreg.datasets.make_example(name)``: a ``make_fisher_kpp_*`` call with
fixed arguments and seed, listed in ``physreg.datasets.EXAMPLES``, so
``physreg.datasets.load_example(name)`` can regenerate it in memory where these files are not
available. See ``data/README.md`` for what each file holds.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from physreg.datasets import EXAMPLES, make_example, truth_of

HERE = Path(__file__).resolve().parent
MAX_BYTES = 200_000


def main() -> None:
    for name, entry in EXAMPLES.items():
        out = make_example(name)
        datasets = (out,) if isinstance(out, xr.Dataset) else out
        for ds, filename in zip(datasets, entry["files"], strict=True):
            path = HERE / filename
            ds.to_netcdf(path, engine="h5netcdf")
            size = path.stat().st_size
            if size > MAX_BYTES:
                raise RuntimeError(f"{path} is {size} bytes, over the {MAX_BYTES} byte budget")
            print(f"wrote {path.name} ({size / 1000:.1f} kB)")
        truth = truth_of(datasets[0])
        print("  truth:", ", ".join(f"{k}={v:.4g}" for k, v in truth.items()))


if __name__ == "__main__":
    main()
