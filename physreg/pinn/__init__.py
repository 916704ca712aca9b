"""Physics-regularised PINN route (built on jinns): network, penalised objective, training."""

from ._fit import PINNFit as PINNFit
from ._fit import fit_pinn as fit_pinn
from ._fit import initial_guess as initial_guess
from ._fit import parameter_space as parameter_space
from ._network import Scales as Scales
from ._network import make_network as make_network
from ._physics import ReactionDiffusionPDE as ReactionDiffusionPDE
from ._problem import PINNData as PINNData
from ._problem import PINNProblem as PINNProblem
from ._problem import Variables as Variables
from ._problem import build_problem as build_problem
from ._problem import with_fixed as with_fixed
from ._problem import with_observations as with_observations
from ._train import Schedule as Schedule
from ._train import TrainState as TrainState
from ._train import init_state as init_state
from ._train import run_adam as run_adam
from ._train import run_lbfgs as run_lbfgs


def __getattr__(name):
    # PINNEstimator builds on physreg.estimators (a later layer): import it on first use
    if name == "PINNEstimator":
        from ._estimator import PINNEstimator

        return PINNEstimator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
