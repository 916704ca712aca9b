"""physreg: mechanistic-statistical estimation of reaction-diffusion models.

Importing physreg enables JAX's float64 mode (see :mod:`physreg._config`).
"""

from . import _config  # noqa: F401  (sets the float64 policy first)
from . import data as data
from . import datasets as datasets
from . import likelihoods as likelihoods
from . import model as model
from . import model_selection as model_selection
from ._config import enable_compilation_cache as enable_compilation_cache
from .estimators import SolverEstimator as SolverEstimator
from .mcmc import MCMCEstimator as MCMCEstimator

__version__ = "0.1.0"


def __getattr__(name):
    # PINNEstimator pulls in jinns (seconds to import): loaded on first use, as physreg.PINNEstimator
    if name == "PINNEstimator":
        from .pinn._estimator import PINNEstimator

        return PINNEstimator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["PINNEstimator"])
