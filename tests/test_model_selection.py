import numpy as np
import pytest
import xarray as xr

from physreg.model_selection import TimeBlockSplit, cross_validate


def _gridded(nt=9):
    t = np.arange(nt, dtype=float)
    return xr.Dataset({"density": (("time", "x"), np.ones((nt, 4)))},
                      coords={"time": t, "x": np.arange(4.0)})


def test_blocked_folds_partition_the_later_times():
    ds = _gridded()
    cv = TimeBlockSplit(n_splits=4, scheme="blocked", keep_first=True)
    held = []
    for train, test in cv.split(ds):
        tt, te = train.time.values, test.time.values
        assert 0.0 in tt and 0.0 not in te
        assert not set(tt) & set(te)
        assert set(tt) | set(te) == set(ds.time.values)
        held.extend(te)
    assert sorted(held) == list(ds.time.values[1:])


def test_forward_folds_never_look_ahead():
    ds = _gridded()
    for train, test in TimeBlockSplit(n_splits=3, scheme="forward").split(ds):
        assert train.time.values.max() < test.time.values.min()


def test_scattered_split_and_errors():
    obs = xr.Dataset({"density": ("obs", np.ones(12))},
                     coords={"time": ("obs", np.repeat(np.arange(4.0), 3)),
                             "x": ("obs", np.tile(np.arange(3.0), 4))})
    folds = list(TimeBlockSplit(n_splits=3).split(obs))
    assert len(folds) == 3 and all(te.sizes["obs"] == 3 for _, te in folds)
    with pytest.raises(ValueError, match="blocks"):
        list(TimeBlockSplit(n_splits=5).split(obs))
    with pytest.raises(ValueError, match="n_splits"):
        TimeBlockSplit(n_splits=1)


class _MeanEstimator:
    """A tiny estimator (mean of the training data) to test the plumbing of cross_validate."""

    def __init__(self, shift=0.0):
        self.shift = shift

    def get_params(self, deep=False):
        return {"shift": self.shift}

    def set_params(self, **p):
        self.shift = p.get("shift", self.shift)
        return self

    def fit(self, obs, covariates=None):
        self.mean_ = float(obs["density"].mean()) + self.shift
        return self

    def score(self, obs):
        return -float(((obs["density"] - self.mean_) ** 2).mean())


def test_cross_validate_scores_each_fold():
    ds = _gridded()
    ds["density"] = ds["density"] * ds.time
    out = cross_validate(_MeanEstimator(), ds, cv=TimeBlockSplit(n_splits=4))
    assert out["test_score"].shape == (4,)
    assert np.all(out["test_score"] < 0)
    best = cross_validate(_MeanEstimator(), ds, cv=TimeBlockSplit(n_splits=4))["test_score"]
    worse = cross_validate(_MeanEstimator(shift=5.0), ds,
                           cv=TimeBlockSplit(n_splits=4))["test_score"]
    assert best.mean() > worse.mean()
