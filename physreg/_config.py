"""Numerical policy of physreg.

Importing :mod:`physreg` switches JAX to 64-bit floats (``jax_enable_x64``).
Likelihood surfaces, Hessians and profile curves need double precision: in
float32 the curvature of a log-likelihood summed over a few hundred
observations is lost in round-off. The switch is global in JAX, so physreg
sets it once at import and documents it here rather than toggling it per
call (toggling would retrace every jitted function). Networks that are
cheaper in float32 (the PINN) cast their own weights explicitly.

``tests/test_config.py`` checks that results do not depend on what the user
set before importing physreg.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

DTYPE = "float64"
