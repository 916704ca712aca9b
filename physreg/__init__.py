"""physreg: mechanistic-statistical estimation of reaction-diffusion models.

Importing physreg enables JAX's float64 mode (see :mod:`physreg._config`).
"""

from . import _config  # noqa: F401  (sets the float64 policy first)

__version__ = "0.1.0"
