"""Finite-volume solver of the reaction-diffusion model (the reference forward model)."""

from ._fv import FiniteVolumeSolver as FiniteVolumeSolver
from ._fv import ObservationOperator as ObservationOperator
from ._fv import observation_operator as observation_operator
