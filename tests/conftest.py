import os
from pathlib import Path

import physreg  # noqa: F401  (float64 policy)

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "PHYSREG_DATA_HOME" not in os.environ and _SHARED.is_dir():
    os.environ["PHYSREG_DATA_HOME"] = str(_SHARED)

# Compiled XLA programs are cached on disk between runs (the solver's time loop takes seconds
# to compile); set PHYSREG_JAX_CACHE= (empty) to disable.
_cache = os.environ.get("PHYSREG_JAX_CACHE", "/tmp/physreg-jax-cache")
if _cache:
    import jax

    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
