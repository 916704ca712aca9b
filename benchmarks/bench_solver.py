"""Speed of physreg's finite-volume solver, each figure against a peer measured in the same run.

a. 2-D heterogeneous Fisher-KPP (Lx=10, Ly=6, D(x) = 0.1 exp(0.5 z), r(x) = 1 + 0.3 z, gamma = 1,
   Gaussian introduction, output at t = 0.5 .. 6): physreg against py-pde (numba backend,
   ``D laplace(u) + dot(gradient(D), gradient(u))``, explicit solvers) at EQUAL ACCURACY: every
   candidate resolution / step of each method is scored (relative L2 error over the output times
   against a 192 x 320 BDF reference, tests/_reference.py), and each method is timed at its
   fastest candidate with error <= 1e-3 (after compilation; median of several solves).
b. 64 parameter sets: one ``jax.vmap``-ed solve against 64 sequential solves (1-D and 2-D).
c. Cost of a gradient (``jax.grad`` of a scalar loss through the solve) against a solve.
d. 1-D, 256 cells: time per solve and per gradient against DESIGN.md's yardstick (0.4 ms per
   solve and 1.7 ms per gradient for a constant-D exact-spectral solver).
e. 1-D time error against max_step for each diffusion method (what the module docstring of
   physreg/solvers/_fv.py relies on).

physreg's solvers get ``D_max`` from a parameter box (``FiniteVolumeSolver.diffusion_bound``),
as a fit would; rows marked ``tridiagonal`` are the solver without that bound.

Writes benchmarks/results/solver.json and benchmarks/results/solver.md. The machine is shared:
its load average is recorded at the start and the end of the run. BLAS/LAPACK run on one thread
unless ``OPENBLAS_NUM_THREADS`` (or ``OMP_NUM_THREADS``) is set: on the shared 2-core machine
the multi-threaded OpenBLAS took 0.8 s for a 256 x 256 ``eigh`` that takes 8 ms on one thread.

    python benchmarks/bench_solver.py            # ~10 min (py-pde's numba compilation dominates)
    python benchmarks/bench_solver.py --quick    # fewer candidates and repeats (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy, scipy and jax load BLAS

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from scipy.interpolate import RegularGridInterpolator  # noqa: E402

import physreg  # noqa: E402,F401  (float64 policy)
from physreg.model import Domain, GaussianIntroductions, Link, ReactionDiffusion  # noqa: E402
from physreg.solvers import FiniteVolumeSolver  # noqa: E402
from tests._reference import reference_1d, reference_2d  # noqa: E402

OUT = Path(__file__).parent / "results"
CACHE = OUT / "tmp"  # references (git-ignored)
TARGET = 1e-3  # relative L2 error both methods must reach in (a)
YARDSTICK = {"solve_ms": 0.4, "grad_ms": 1.7}  # DESIGN.md, constant-D spectral solver, 1-D

# ---- the test problems (tests/test_solver.py) -------------------------------------------
L1 = 10.0
P1 = dict(D=0.1, D_z=0.5, r=1.0, r_z=0.3, gamma=1.0, ic_x=3.0, ic_width=0.5, ic_mass=1.0)
T1 = np.linspace(0.5, 8.0, 6)
LX, LY = 10.0, 6.0
P2 = dict(D=0.1, D_z=0.5, r=1.0, r_z=0.3, gamma=1.0, ic_x=3.0, ic_y=2.5, ic_width=0.7,
          ic_mass=1.0)
T2 = np.linspace(0.5, 6.0, 4)
# the parameter box of a fit around them: sizes D_max, and (b) draws its 64 sets from it
BOX = dict(D=(0.05, 0.15), D_z=(0.3, 0.6), r=(0.7, 1.3), r_z=(0.1, 0.4), gamma=(0.8, 1.2))
MODEL1 = ReactionDiffusion(Domain((0.0, L1)), D=Link("log", ("z",)), r=Link("identity", ("z",)),
                           initial=GaussianIntroductions())
MODEL2 = ReactionDiffusion(Domain((0.0, LX), (0.0, LY)), D=Link("log", ("z",)),
                           r=Link("identity", ("z",)), initial=GaussianIntroductions())


def z1(x):
    return np.sin(2 * np.pi * x / L1)


def z2(y, x):
    return np.sin(2 * np.pi * x / LX) * np.cos(np.pi * y / LY)


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


def log(*a):
    print(*a, flush=True)


# ---- timing ---------------------------------------------------------------------------------
def timed(fn, repeats: int, min_time: float = 0.0) -> dict:
    """Median and min wall time (ms) of ``fn()`` after one warm-up call (compilation)."""
    jax.block_until_ready(fn())
    ts = []
    t_start = time.perf_counter()
    while len(ts) < repeats or (time.perf_counter() - t_start < min_time and len(ts) < 200):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t)
    return {"median_ms": 1e3 * statistics.median(ts), "min_ms": 1e3 * min(ts), "n": len(ts)}


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "jax": jax.__version__, "numpy": np.__version__, "platform": platform.platform(),
            "jax_devices": [str(d) for d in jax.devices()]}
    info["blas_threads"] = {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS",
                                                            "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    try:
        info["cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    for mod in ("pde", "numba", "equinox", "scipy"):
        try:
            info[mod if mod != "pde" else "py-pde"] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    return info


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---- references -------------------------------------------------------------------------
def ref2d(shape=(192, 320)):
    CACHE.mkdir(parents=True, exist_ok=True)
    f = CACHE / f"ref2d_{shape[0]}x{shape[1]}.npz"
    if f.exists():
        d = np.load(f)
        return d["y"], d["x"], d["u"]
    log(f"  2-D reference {shape} (scipy BDF, a few minutes; cached in {f})")
    p = P2
    y, x, u = reference_2d(
        LX, LY, shape[1], shape[0], lambda y, x: p["D"] * np.exp(p["D_z"] * z2(y, x)),
        lambda y, x: p["r"] + p["r_z"] * z2(y, x), p["gamma"],
        lambda y, x: p["ic_mass"] / (2 * np.pi * p["ic_width"] ** 2)
        * np.exp(-0.5 * ((x - p["ic_x"]) ** 2 + (y - p["ic_y"]) ** 2) / p["ic_width"] ** 2), T2)
    np.savez(f, y=y, x=x, u=u)
    return y, x, u


def ref1d(n=4096):
    CACHE.mkdir(parents=True, exist_ok=True)
    f = CACHE / f"ref1d_{n}.npz"
    if f.exists():
        d = np.load(f)
        return d["x"], d["u"]
    p = P1
    x, u = reference_1d(
        L1, n, lambda x: p["D"] * np.exp(p["D_z"] * z1(x)), lambda x: p["r"] + p["r_z"] * z1(x),
        p["gamma"], lambda x: p["ic_mass"] / np.sqrt(2 * np.pi) / p["ic_width"]
        * np.exp(-0.5 * (x - p["ic_x"]) ** 2 / p["ic_width"] ** 2), T1)
    np.savez(f, x=x, u=u)
    return x, u


def on_grid_2d(ref, y, x):
    yr, xr, ur = ref
    pts = np.stack(np.meshgrid(y, x, indexing="ij"), -1)
    return np.array([RegularGridInterpolator((yr, xr), v, bounds_error=False,
                                             fill_value=None)(pts) for v in ur])


# ---- physreg set-ups ----------------------------------------------------------------------
def solver2d(shape, max_step=None, method="auto", bound=True):
    grid = FiniteVolumeSolver(MODEL2, shape)
    cov = {"z": z2(*grid.mesh())}
    D_max = FiniteVolumeSolver.diffusion_bound(MODEL2, BOX, cov) if bound else None
    return FiniteVolumeSolver(MODEL2, shape, max_step, method, D_max=D_max), cov


def solver1d(n=256, max_step=None, method="auto", bound=True):
    grid = FiniteVolumeSolver(MODEL1, n)
    cov = {"z": z1(grid.centres[0])}
    D_max = FiniteVolumeSolver.diffusion_bound(MODEL1, BOX, cov) if bound else None
    return FiniteVolumeSolver(MODEL1, n, max_step, method, D_max=D_max), cov


# ---- (a) equal accuracy against py-pde ----------------------------------------------------
def physreg_2d(ref, quick):
    span = T2[-1]
    shapes = [(32, 48), (40, 64), (48, 80), (64, 64)] if not quick else [(40, 64), (64, 64)]
    steps = [span / 25, span / 50, span / 100, span / 200] if not quick else [span / 50]
    rows = []
    for method in ("auto", "tridiagonal"):
        for shape in shapes:
            for h in steps:
                if method == "tridiagonal" and h != steps[-1] and h != span / 50:
                    continue  # its time error is tiny: two steps per shape are enough
                s, cov = solver2d(shape, h, method, bound=(method == "auto"))
                plan = s.plan(T2, 0.0)
                u = np.asarray(s.solve(P2, T2, t0=0.0, cov=cov))
                err = rel(u, on_grid_2d(ref, *s.centres))
                rows.append({"method": plan["method"], "shape": list(shape), "max_step": h,
                             "n_sub": plan["n_sub"], "n_stages": plan["n_stages"],
                             "rel_error": err, "_solver": (s, cov)})
                log(f"  physreg {plan['method']:11s} {shape} max_step={h:.3f} "
                    f"stages={plan['n_stages']}: error {err:.2e}")
    return rows


def time_physreg_2d(rows, repeats):
    for r in rows:
        s, cov = r.pop("_solver")
        if r["rel_error"] <= TARGET:
            r["time"] = timed(lambda s=s, cov=cov: s.solve(P2, T2, t0=0.0, cov=cov), repeats,
                              min_time=0.5)
            log(f"  physreg {r['method']:11s} {tuple(r['shape'])} max_step={r['max_step']:.3f}: "
                f"{r['time']['median_ms']:.2f} ms")
    return rows


def pypde_2d(ref, quick, repeats):
    import pde

    p = P2
    z = f"(sin(2*pi*x/{LX})*cos(pi*y/{LY}))"
    D = f"({p['D']}*exp({p['D_z']}*{z}))"
    rhs = (f"{D}*laplace(u) + dot(gradient({D}), gradient(u)) "
           f"+ u*(({p['r']}+{p['r_z']}*{z}) - {p['gamma']}*u)")
    eq = pde.PDE({"u": rhs}, bc={"derivative": 0})
    # (nx, ny), solver, options. The 64 x 40 grid has physreg's best cell sizes; the finer one
    # is tried only if none of the coarse candidates reaches the target.
    cands = [((64, 40), "runge-kutta", dict(adaptive=True, tolerance=1e-2)),
             ((64, 40), "runge-kutta", dict(adaptive=True, tolerance=1e-3)),
             ((64, 40), "euler", dict(dt=5e-4)),
             ((80, 48), "runge-kutta", dict(adaptive=True, tolerance=1e-3))]
    if quick:
        cands = cands[1:2]
    rows = []
    for (nx, ny), scheme, opt in cands:
        if (nx, ny) != (64, 40) and any("time" in r for r in rows):
            continue
        grid = pde.CartesianGrid([[0.0, LX], [0.0, LY]], [nx, ny])
        X, Y = grid.cell_coords[..., 0], grid.cell_coords[..., 1]
        u0 = p["ic_mass"] / (2 * np.pi * p["ic_width"] ** 2) * np.exp(
            -0.5 * ((X - p["ic_x"]) ** 2 + (Y - p["ic_y"]) ** 2) / p["ic_width"] ** 2)
        state0 = pde.ScalarField(grid, u0)
        t = time.perf_counter()
        if scheme == "euler":
            solver = pde.EulerSolver(eq, backend="numba")
            dt0 = opt["dt"]
        else:
            solver = pde.RungeKuttaSolver(eq, backend="numba", **opt)
            dt0 = 1e-3
        stepper = solver.make_stepper(state0, dt=dt0)

        def solve(stepper=stepper, state0=state0):
            st = state0.copy()
            out, t_now = [], 0.0
            for t_out in T2:
                t_now = stepper(st, t_now, float(t_out))
                out.append(st.data.T.copy())  # py-pde data is (x, y): physreg's (y, x)
            return np.array(out)

        u = solve()  # the first call finishes numba's compilation
        t_compile = time.perf_counter() - t
        err = rel(u, on_grid_2d(ref, grid.axes_coords[1], grid.axes_coords[0]))
        row = {"grid_xy": [nx, ny], "scheme": scheme, "options": opt, "rel_error": err,
               "compile_s": t_compile, "steps_per_solve": None}
        log(f"  py-pde {scheme} {nx}x{ny} {opt}: error {err:.2e} (compilation {t_compile:.0f} s)")
        if err <= TARGET:
            steps0 = int(solver.info.get("steps", 0))
            row["time"] = timed(solve, max(3, repeats // 2))
            row["steps_per_solve"] = (int(solver.info.get("steps", 0)) - steps0) / (
                row["time"]["n"] + 1)
            log(f"  py-pde {scheme} {nx}x{ny}: {row['time']['median_ms']:.1f} ms per solve")
        rows.append(row)
    return rows


def fastest(rows, **match):
    ok = [r for r in rows if "time" in r and all(r.get(k) == v for k, v in match.items())]
    return min(ok, key=lambda r: r["time"]["median_ms"]) if ok else None


# ---- (b) vmap, (c) gradients, (d) 1-D yardstick ---------------------------------------------
def draws(n=64, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for k, (lo, hi) in BOX.items():
        out[k] = (np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if k == "D"
                  else rng.uniform(lo, hi, n))
    return out


def problem(ndim, method):
    """(solver, cov, output times, base parameters) of the 1-D or 2-D test problem."""
    if ndim == 1:
        s, cov = solver1d(256, None, method, bound=(method != "tridiagonal"))
        return s, cov, T1, P1
    s, cov = solver2d((64, 64), None, method, bound=(method != "tridiagonal"))
    return s, cov, T2, P2


def vmap_case(ndim, method, repeats):
    s, cov, T, P = problem(ndim, method)
    names = tuple(BOX)
    batch = jnp.asarray(np.stack([draws()[k] for k in names], -1))  # (64, 5)

    def one(v):
        return s.solve({**P, **dict(zip(names, v, strict=True))}, T, t0=0.0, cov=cov)

    single = jax.jit(one)
    batched = jax.jit(jax.vmap(one))

    def sequential():
        out = None
        for v in batch:
            out = single(v)
            out.block_until_ready()
        return out

    reps = max(2, repeats // 3)
    t_seq = timed(sequential, reps)
    t_vmap = timed(lambda: batched(batch), reps)
    # the two agree
    np.testing.assert_allclose(np.asarray(batched(batch)[-1]), np.asarray(single(batch[-1])),
                               rtol=1e-9, atol=1e-12)
    row = {"ndim": ndim, "method": s.plan(T, 0.0)["method"], "n_sets": int(batch.shape[0]),
           "sequential": t_seq, "vmap": t_vmap,
           "speedup_vmap": t_seq["median_ms"] / t_vmap["median_ms"]}
    log(f"  {ndim}-D {row['method']:11s}: 64 sequential {t_seq['median_ms']:.0f} ms, "
        f"vmap {t_vmap['median_ms']:.0f} ms (x{row['speedup_vmap']:.2f})")
    return row


def grad_case(ndim, method, repeats):
    s, cov, T, P = problem(ndim, method)
    names = tuple(P)
    v0 = jnp.asarray([P[k] for k in names])
    data = np.asarray(s.solve({**P, "D": 0.12, "r": 0.9}, T, t0=0.0, cov=cov))

    def solve(v):
        return s.solve(dict(zip(names, v, strict=True)), T, t0=0.0, cov=cov)

    def loss(v):
        return jnp.sum((solve(v) - data) ** 2)

    f_solve = jax.jit(solve)
    f_grad = jax.jit(jax.grad(loss))
    t_s = timed(lambda: f_solve(v0), repeats, min_time=1.0)
    t_g = timed(lambda: f_grad(v0), repeats, min_time=1.0)
    row = {"ndim": ndim, "method": s.plan(T, 0.0)["method"],
           "shape": list(s.shape), "plan": s.plan(T, 0.0), "n_params": len(names),
           "solve": t_s, "grad": t_g, "grad_over_solve": t_g["median_ms"] / t_s["median_ms"]}
    log(f"  {ndim}-D {row['method']:11s}: solve {t_s['median_ms']:.2f} ms, "
        f"gradient {t_g['median_ms']:.2f} ms (x{row['grad_over_solve']:.1f})")
    return row


# ---- (e) 1-D time error against max_step ----------------------------------------------------
def time_error_1d(quick):
    xr, ur = ref1d()
    rows = []
    fine, cov = solver1d(256, T1[-1] / 6400, "tridiagonal", bound=False)
    u_fine = np.asarray(fine.solve(P1, T1, t0=0.0, cov=cov))
    u_ref = np.array([np.interp(fine.centres[0], xr, v) for v in ur])
    log(f"  1-D space error (256 cells, dt -> 0): {rel(u_fine, u_ref):.2e}")
    divisors = (400, 200, 100, 50, 25) if not quick else (200, 50)
    for method in ("tridiagonal", "spectral", "rkc"):
        for k in divisors:
            s, cov = solver1d(256, T1[-1] / k, method, bound=(method == "rkc"))
            u = np.asarray(s.solve(P1, T1, t0=0.0, cov=cov))
            t = timed(lambda s=s, cov=cov: s.solve(P1, T1, t0=0.0, cov=cov),
                      3 if method == "spectral" else 10)
            plan = s.plan(T1, 0.0)
            rows.append({"method": method, "max_step": T1[-1] / k, "n_sub": plan["n_sub"],
                         "n_stages": plan["n_stages"], "time_error": rel(u, u_fine),
                         "total_error": rel(u, u_ref), "time": t})
            log(f"  {method:11s} max_step=span/{k}: time error {rel(u, u_fine):.1e}, "
                f"total {rel(u, u_ref):.1e}, {t['median_ms']:.2f} ms")
    return {"space_error": rel(u_fine, u_ref), "rows": rows}


# ---- report ---------------------------------------------------------------------------------
def _t(t, digits=2):
    return f"{t['median_ms']:.{digits}f} ({t['min_ms']:.{digits}f})"


def markdown(res) -> str:
    m = res["machine"]
    L = [f"# Solver benchmark ({res['date']})", "",
         f"{m['cpu']}, {m.get('cores_usable', m['cores'])} usable cores (shared; load average "
         f"{res['load_start']} at start, {res['load_end']} at end), jax {m['jax']}, "
         f"py-pde {m.get('py-pde')}, numba {m.get('numba')}, BLAS threads "
         f"{m['blas_threads']['OPENBLAS_NUM_THREADS']}. Times: wall ms after compilation, "
         "median (min) of repeated runs; ratios of medians. Reproduce: "
         "`python benchmarks/bench_solver.py`.", ""]
    a = res["equal_accuracy_2d"]
    L += ["## a. 2-D heterogeneous Fisher-KPP at equal accuracy (rel. L2 error <= 1e-3)", "",
          "| method | resolution | step | error | ms / solve | py-pde / this |",
          "|---|---|---|---|---|---|"]
    pp = a["pypde_best"]
    for key in ("physreg_best", "physreg_tridiagonal_best"):
        r = a.get(key)
        if r:
            step = f"max_step {r['max_step']:.3f}, {r['n_stages']} stages" if r["n_stages"] \
                else f"max_step {r['max_step']:.3f}"
            ratio = f"{pp['time']['median_ms'] / r['time']['median_ms']:.1f}" if pp else "-"
            L.append(f"| physreg {r['method']} | {r['shape'][0]} x {r['shape'][1]} (y x) | "
                     f"{step} | {r['rel_error']:.1e} | {_t(r['time'])} | {ratio} |")
    if pp:
        L.append(f"| py-pde {pp['scheme']} (numba) | {pp['grid_xy'][1]} x {pp['grid_xy'][0]} "
                 f"(y x) | {pp['options']} | {pp['rel_error']:.1e} | "
                 f"{_t(pp['time'], 1)} | 1 |")
    L += ["", "All candidates (error; time where error <= 1e-3):", ""]
    for r in a["physreg"]:
        t = f", {r['time']['median_ms']:.2f} ms" if "time" in r else ""
        L.append(f"- physreg {r['method']} {r['shape']} max_step {r['max_step']:.3f}: "
                 f"{r['rel_error']:.2e}{t}")
    for r in a["pypde"]:
        t = f", {r['time']['median_ms']:.1f} ms" if "time" in r else ""
        L.append(f"- py-pde {r['scheme']} {r['grid_xy']} (x, y) {r['options']}: "
                 f"{r['rel_error']:.2e}{t} (compilation {r['compile_s']:.0f} s)")
    L += ["", "## b. 64 parameter sets: jax.vmap against 64 sequential solves", "",
          "| case | method | 64 sequential (ms) | vmap (ms) | sequential / vmap |",
          "|---|---|---|---|---|"]
    for r in res["vmap"]:
        L.append(f"| {r['ndim']}-D | {r['method']} | {_t(r['sequential'], 0)} | "
                 f"{_t(r['vmap'], 0)} | {r['speedup_vmap']:.2f} |")
    L += ["", "## c. Gradient (jax.grad of a scalar loss) against a solve", "",
          "| case | method | grid | solve (ms) | gradient (ms) | gradient / solve |",
          "|---|---|---|---|---|---|"]
    for r in res["gradient"]:
        L.append(f"| {r['ndim']}-D | {r['method']} | {r['shape']} | "
                 f"{_t(r['solve'])} | {_t(r['grad'])} | {r['grad_over_solve']:.1f} |")
    d = res["yardstick_1d"]
    L += ["", "## d. 1-D, 256 cells, against the yardstick (0.4 ms / solve, 1.7 ms / gradient; "
          "constant-D spectral)", "",
          "| method | ms / solve | x yardstick | ms / gradient | x yardstick |",
          "|---|---|---|---|---|"]
    for r in d:
        L.append(f"| {r['method']} | {r['solve_ms']:.2f} | {r['solve_vs_yardstick']:.1f} | "
                 f"{r['grad_ms']:.2f} | {r['grad_vs_yardstick']:.1f} |")
    e = res.get("time_error_1d")
    if e:
        L += ["", f"## e. 1-D time error against max_step (space error at 256 cells: "
              f"{e['space_error']:.1e})", "",
              "| method | max_step | steps / interval | stages | time error | total error | ms |",
              "|---|---|---|---|---|---|---|"]
        for r in e["rows"]:
            L.append(f"| {r['method']} | {r['max_step']:.3f} | {r['n_sub']} | {r['n_stages']} | "
                     f"{r['time_error']:.1e} | {r['total_error']:.1e} | "
                     f"{r['time']['median_ms']:.2f} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer candidates and repeats")
    ap.add_argument("--no-pypde", action="store_true", help="skip py-pde (no numba)")
    args = ap.parse_args()
    repeats = 3 if args.quick else 9
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    res = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(), "load_start": load(),
           "target_error": TARGET, "box": BOX}
    log(f"machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, jax "
        f"{jax.__version__}, load {res['load_start']}")

    log("(a) 2-D at equal accuracy: physreg")
    ref = ref2d()
    rows = time_physreg_2d(physreg_2d(ref, args.quick), repeats)
    best = fastest(rows, method="rkc") or fastest(rows)
    a = {"physreg": rows, "physreg_best": best,
         "physreg_tridiagonal_best": fastest(rows, method="tridiagonal")}
    if not args.no_pypde:
        log("(a) 2-D at equal accuracy: py-pde (numba compilation takes minutes)")
        a["pypde"] = pypde_2d(ref, args.quick, repeats)
        a["pypde_best"] = fastest(a["pypde"])
    else:
        a["pypde"], a["pypde_best"] = [], None
    if best and a["pypde_best"]:
        a["pypde_over_physreg"] = a["pypde_best"]["time"]["median_ms"] / best["time"]["median_ms"]
        tb = a["physreg_tridiagonal_best"]
        if tb:
            a["pypde_over_physreg_tridiagonal"] = (a["pypde_best"]["time"]["median_ms"]
                                                   / tb["time"]["median_ms"])
        log(f"  py-pde / physreg: {a['pypde_over_physreg']:.1f}")
    res["equal_accuracy_2d"] = a

    log("(b) 64 parameter sets: vmap against sequential")
    res["vmap"] = [vmap_case(1, "auto", repeats), vmap_case(1, "tridiagonal", repeats),
                   vmap_case(2, "auto", repeats)]
    if not args.quick:
        res["vmap"].append(vmap_case(2, "tridiagonal", 3))

    log("(c, d) gradient against solve")
    res["gradient"] = [grad_case(1, "auto", repeats), grad_case(1, "tridiagonal", repeats),
                       grad_case(2, "auto", repeats)]
    if not args.quick:
        res["gradient"].append(grad_case(2, "tridiagonal", 3))
    res["yardstick_1d"] = [
        {"method": r["method"], "solve_ms": r["solve"]["median_ms"],
         "grad_ms": r["grad"]["median_ms"],
         "solve_vs_yardstick": r["solve"]["median_ms"] / YARDSTICK["solve_ms"],
         "grad_vs_yardstick": r["grad"]["median_ms"] / YARDSTICK["grad_ms"]}
        for r in res["gradient"] if r["ndim"] == 1]
    res["yardstick"] = YARDSTICK

    log("(e) 1-D time error against max_step")
    res["time_error_1d"] = time_error_1d(args.quick)

    res["load_end"] = load()
    out = CACHE if args.quick else OUT  # a smoke run does not replace the results
    out.mkdir(parents=True, exist_ok=True)
    (out / "solver.json").write_text(json.dumps(res, indent=1, default=_json))
    (out / "solver.md").write_text(markdown(res))
    log(f"wrote {out / 'solver.json'} and {out / 'solver.md'}")


def _json(x):
    if isinstance(x, np.generic | np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    raise TypeError(type(x))


if __name__ == "__main__":
    main()
