"""``physreg fit FILE --method pinn``: a tiny network end to end, and argument errors."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import physreg
from physreg.cli import app

TINY = ["--option", "width=8", "--option", "depth=1", "--option", "modes=4",
        "--option", "n_collocation=64", "--option", "n_adam=60", "--option", "n_lbfgs=10"]


@pytest.fixture(scope="module")
def nc_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "obs.nc"
    ds = physreg.datasets.load_example("fkpp1d_gaussian")
    ds[["density"]].to_netcdf(path, engine="h5netcdf")
    return path


def test_fit_method_pinn_writes_estimates(nc_file, tmp_path):
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "pinn", "--initial",
                                 "gaussian", "--t0", "0", "--interval", "wald", *TINY,
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "estimates.json").read_text())
    assert res["estimator"] == "PINNEstimator"
    assert res["interval_method"] == "wald"
    assert set(res["params"]) >= {"D", "r", "gamma", "sigma"}
    assert res["units"]["D"] == "km^2/day"
    assert (out / "fit.png").exists() and (out / "intervals.nc").exists()
    assert "D" in r.output and "wald intervals" in r.output


def test_fit_method_pinn_bias_correction(nc_file, tmp_path):
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "pinn", "--initial",
                                 "gaussian", "--t0", "0", "--interval", "wald", *TINY,
                                 "--bias-correction", "1", "--bias-rounds", "2",
                                 "--opt-noise", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "estimates.json").read_text())
    assert res["interval_method"] == "wald+bias-corrected+opt-noise"
    assert res["bias"]["n_sim"] == 1 and res["bias"]["n_rounds"] == 2
    assert res["bias"]["data"] == "simulated"
    assert res["opt_noise"]["n_starts"] == 1 and res["opt_noise"]["sd"]["D"] > 0
    b = res["bias"]["values"]["D"]
    # the corrected estimate is the fit's with the bias removed (log scale for D)
    assert res["params"]["D"] == pytest.approx(res["params_uncorrected"]["D"] * np.exp(-b),
                                               rel=1e-9)
    assert b != 0.0
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--bias-correction", "2",
                                 "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--method pinn" in r.output
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "pinn", "--bias-rounds", "2",
                                 "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--bias-rounds" in r.output
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "pinn", "--bias-data",
                                 "expected", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--bias-data" in r.output
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "pinn", "--bias-correction",
                                 "1", "--bias-data", "mean", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--bias-data" in r.output
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--opt-noise", "2", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "--opt-noise" in r.output


def test_fit_rejects_unknown_options(nc_file, tmp_path):
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "pinn", "--option",
                                 "widht=8", "--out", str(tmp_path)])
    assert r.exit_code != 0
    assert "widht" in r.output
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "pinn", "--option", "8",
                                 "--out", str(tmp_path)])
    assert r.exit_code != 0 and "NAME=VALUE" in r.output
    r = CliRunner().invoke(app, ["fit", str(nc_file), "--method", "nn", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "unknown method" in r.output
