"""Cross-validation on xarray observations (scikit-learn's splitters cannot split a Dataset).

Observations of a spreading population are dependent in time, so folds are *blocks of whole
observation times*: :class:`TimeBlockSplit` holds out contiguous groups of times (``"blocked"``)
or trains on the past and tests on the next block (``"forward"``). With ``keep_first=True`` the
first time stays in every training set (estimators whose initial condition is the first slice
need it). :func:`cross_validate` clones the estimator, refits it on each training set and scores it
(mean log-likelihood per observation) on the held-out times.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xarray as xr
from sklearn.base import clone

__all__ = ["TimeBlockSplit", "cross_validate"]


def _times(obs: xr.Dataset) -> np.ndarray:
    if "time" not in obs.coords:
        raise ValueError("The observations have no 'time' coordinate to split on.")
    return np.unique(np.asarray(obs["time"].values, float))


def _select_times(obs: xr.Dataset, times: np.ndarray) -> xr.Dataset:
    mask = np.isin(np.asarray(obs["time"].values, float), times)
    dim = "obs" if "obs" in obs.dims else "time"
    return obs.isel({dim: np.nonzero(mask)[0]})


class TimeBlockSplit:
    """Split observations into folds of contiguous observation times.

    Parameters
    ----------
    n_splits : int
        Number of folds (at most the number of times that can be held out).
    scheme : {"blocked", "forward"}
        ``blocked``: each fold holds out one block, the rest trains. ``forward``: fold k trains
        on the blocks before block k and tests on block k (no look-ahead).
    keep_first : bool
        Keep the first observation time in every training set and out of every test set.
    """

    def __init__(self, n_splits: int = 4, scheme: str = "blocked", keep_first: bool = True):
        if int(n_splits) < 2:
            raise ValueError(f"n_splits must be >= 2, got {n_splits}.")
        if scheme not in ("blocked", "forward"):
            raise ValueError(f"scheme must be 'blocked' or 'forward', got {scheme!r}.")
        self.n_splits = int(n_splits)
        self.scheme = scheme
        self.keep_first = bool(keep_first)

    def get_n_splits(self, obs=None) -> int:
        return self.n_splits

    def split_times(self, times: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        fixed = times[:1] if self.keep_first else times[:0]
        pool = times[1:] if self.keep_first else times
        n_blocks = self.n_splits + (1 if self.scheme == "forward" else 0)
        if len(pool) < n_blocks:
            raise ValueError(f"{len(pool)} observation times can be held out, fewer than the "
                             f"{n_blocks} blocks that n_splits={self.n_splits} ({self.scheme}) "
                             "needs.")
        blocks = np.array_split(pool, n_blocks)
        for k in range(self.n_splits):
            if self.scheme == "blocked":
                test = blocks[k]
                train = np.concatenate([fixed] + [b for i, b in enumerate(blocks) if i != k])
            else:
                test = blocks[k + 1]
                train = np.concatenate([fixed] + blocks[: k + 1])
            yield train, test

    def split(self, obs: xr.Dataset) -> Iterator[tuple[xr.Dataset, xr.Dataset]]:
        """Yield (train, test) datasets."""
        for train, test in self.split_times(_times(obs)):
            yield _select_times(obs, train), _select_times(obs, test)


def cross_validate(estimator, obs: xr.Dataset, covariates=None, cv=None) -> dict:
    """Refit a clone of ``estimator`` on each training fold and score it on the test fold.

    Returns ``{"test_score": (n_splits,) mean log-likelihood per held-out observation,
    "train_times": [...], "test_times": [...], "estimators": [...]}``.
    """
    cv = cv or TimeBlockSplit()
    scores, train_t, test_t, fitted = [], [], [], []
    for train, test in cv.split(obs):
        est = clone(estimator).fit(train, covariates=covariates)
        scores.append(est.score(test))
        train_t.append(_times(train))
        test_t.append(_times(test))
        fitted.append(est)
    return {"test_score": np.array(scores), "train_times": train_t, "test_times": test_t,
            "estimators": fitted}
