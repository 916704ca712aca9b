import os
from pathlib import Path

import physreg  # noqa: F401  (float64 policy)

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "PHYSREG_DATA_HOME" not in os.environ and _SHARED.is_dir():
    os.environ["PHYSREG_DATA_HOME"] = str(_SHARED)
