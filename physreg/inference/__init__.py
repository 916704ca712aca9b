"""Inference machinery shared by the estimators: optimisation, intervals, MCMC."""

from ._intervals import bootstrap_intervals as bootstrap_intervals
from ._intervals import chi2_threshold as chi2_threshold
from ._intervals import profile as profile
from ._intervals import resample_weights as resample_weights
from ._intervals import wald as wald
from ._intervals import widen_for_noise as widen_for_noise
from ._optimize import OptimizeResult as OptimizeResult
from ._optimize import batch_map as batch_map
from ._optimize import default_batch_size as default_batch_size
from ._optimize import minimize as minimize
from ._optimize import minimize_batch as minimize_batch
