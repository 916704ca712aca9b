"""Metamodels of the solution map theta -> u(t, x): hypernetwork PINNs (full and low-rank).

See :mod:`physreg.metamodels._hyper` (the models, save/load, training-domain check) and
:mod:`physreg.metamodels._train` (supervised and physics-residual training, error report).
"""

from ._hyper import FEATURES as FEATURES
from ._hyper import KINDS as KINDS
from ._hyper import FKPPSetup as FKPPSetup
from ._hyper import FKPPSetup2D as FKPPSetup2D
from ._hyper import HyperPINN as HyperPINN
from ._hyper import load_info as load_info
from ._hyper import load_metamodel as load_metamodel
from ._hyper import save_metamodel as save_metamodel
from ._train import default_grid as default_grid
from ._train import relative_errors as relative_errors
from ._train import sample_box as sample_box
from ._train import solver_2d as solver_2d
from ._train import solver_snapshots as solver_snapshots
from ._train import train_metamodel as train_metamodel
