"""scikit-learn checks that apply to estimators taking xarray Datasets, and the x64 policy."""

import subprocess
import sys

import pytest
from sklearn.utils import estimator_checks as ec

import physreg

# The array-based checks (fit on random 2-D arrays, sparse input, ...) cannot apply: the input is
# an xarray Dataset (tags.input_tags.two_d_array = False). Our own Dataset versions of them are in
# test_solver_estimator.py (fit returns self, idempotent, input not mutated, bad input errors).
APPLICABLE = ["check_no_attributes_set_in_init", "check_parameters_default_constructible",
              "check_get_params_invariance", "check_set_params", "check_estimator_cloneable",
              "check_estimator_repr", "check_estimator_tags_renamed", "check_valid_tag_types"]


@pytest.mark.parametrize("check", APPLICABLE)
@pytest.mark.parametrize("cls", [physreg.SolverEstimator, physreg.MCMCEstimator])
def test_sklearn_checks(cls, check):
    getattr(ec, check)(cls.__name__, cls())


def test_tags_say_not_an_array_estimator():
    tags = physreg.SolverEstimator().__sklearn_tags__()
    assert tags.input_tags.two_d_array is False


_SNIPPET = """
import jax
jax.config.update("jax_enable_x64", {flag})
import numpy as np, physreg
from physreg.model import Domain, GaussianIntroductions, ReactionDiffusion
from physreg.solvers import FiniteVolumeSolver
s = FiniteVolumeSolver(ReactionDiffusion(Domain((0.0, 10.0)), initial=GaussianIntroductions()), 64)
u = s.solve(dict(D=0.1, r=1.0, gamma=1.0, ic_x=2.0, ic_width=0.3, ic_mass=0.5), [1.0, 3.0], t0=0.0)
print(u.dtype, repr(float(np.asarray(u).sum())))
"""


def test_results_do_not_depend_on_user_x64_setting():
    outs = []
    for flag in (False, True):
        r = subprocess.run([sys.executable, "-c", _SNIPPET.format(flag=flag)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout.strip())
    assert outs[0] == outs[1]
    assert outs[0].startswith("float64")
