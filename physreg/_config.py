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

Compilation dominates a first PINN fit (about 40 of 86 s for the 1-D yardstick on 2 cores):
:func:`enable_compilation_cache` keeps JAX's compiled programs on disk, so that a new Python
process fitting a problem of the same shapes loads them instead of compiling. It is off unless
called or ``PHYSREG_CACHE_DIR`` is set (then on at import, in that folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)


def enable_compilation_cache(path=None, min_compile_seconds: float = 1.0) -> Path:
    """Turn on JAX's persistent compilation cache (global to the process) and return its folder.

    ``path``: the folder (created if missing); default ``$PHYSREG_CACHE_DIR``, else
    ``~/.cache/physreg/jax``. Programs that took at least ``min_compile_seconds`` to compile
    are stored. Entries are keyed by the program, the JAX version and the device, so a stale
    entry is never used; delete the folder to reclaim the space.
    """
    folder = Path(path or os.environ.get("PHYSREG_CACHE_DIR")
                  or Path.home() / ".cache" / "physreg" / "jax").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    return folder


if os.environ.get("PHYSREG_CACHE_DIR"):
    enable_compilation_cache()

DTYPE = "float64"
