"""Numerical policy (physreg._config): float64 whatever the user set before the import, and the
opt-in persistent compilation cache."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp

import physreg


def _run(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120, check=True)
    return out.stdout.strip().splitlines()


def test_float64_after_import_whatever_was_set_before():
    assert jnp.asarray(1.0).dtype == jnp.float64
    lines = _run("import jax; jax.config.update('jax_enable_x64', False); import physreg, "
                 "jax.numpy as jnp; print(jnp.asarray(1.0).dtype)")
    assert lines[-1] == "float64"


def test_enable_compilation_cache(tmp_path):
    before = jax.config.jax_compilation_cache_dir
    try:
        folder = physreg.enable_compilation_cache(tmp_path / "cache")
        assert folder.is_dir()
        assert jax.config.jax_compilation_cache_dir == str(folder)
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    # PHYSREG_CACHE_DIR turns it on at import; without it the cache stays off
    code = "import jax, physreg; print(jax.config.jax_compilation_cache_dir)"
    assert _run(code, PHYSREG_CACHE_DIR=str(tmp_path / "env"))[-1] == str(tmp_path / "env")
    assert (tmp_path / "env").is_dir()
    env = {k: v for k, v in os.environ.items() if k != "PHYSREG_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "None"
