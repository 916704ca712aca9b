"""Independent method-of-lines references (numpy finite differences + scipy BDF).

Written separately from physreg's solver: point values on a fine vertex-free grid, D evaluated
exactly at the faces (not harmonic means of cell values), stiff BDF with tight tolerances.
"""

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp


def reference_1d(L, N, D_fn, r_fn, gamma, u0_fn, t_eval, rtol=1e-10):
    h = L / N
    x = (np.arange(N) + 0.5) * h
    Df = D_fn(np.arange(1, N) * h)
    rc = r_fn(x)

    def f(t, u):
        F = np.zeros(N + 1)
        F[1:-1] = -Df * (u[1:] - u[:-1]) / h
        return -(F[1:] - F[:-1]) / h + u * (rc - gamma * u)

    J = sp.diags([np.ones(N - 1), np.ones(N), np.ones(N - 1)], [-1, 0, 1])
    sol = solve_ivp(f, (0.0, t_eval[-1]), u0_fn(x), t_eval=t_eval, method="BDF", rtol=rtol,
                    atol=1e-13, jac_sparsity=J)
    assert sol.success
    return x, sol.y.T


def reference_2d(Lx, Ly, Nx, Ny, D_fn, r_fn, gamma, u0_fn, t_eval, rtol=1e-9):
    hx, hy = Lx / Nx, Ly / Ny
    x = (np.arange(Nx) + 0.5) * hx
    y = (np.arange(Ny) + 0.5) * hy
    Y, X = np.meshgrid(y, x, indexing="ij")
    rc = r_fn(Y, X)
    Dfx = D_fn(Y[:, 1:], X[:, 1:] - hx / 2)
    Dfy = D_fn(Y[1:, :] - hy / 2, X[1:, :])

    def f(t, uf):
        u = uf.reshape(Ny, Nx)
        Fx = np.zeros((Ny, Nx + 1))
        Fy = np.zeros((Ny + 1, Nx))
        Fx[:, 1:-1] = -Dfx * (u[:, 1:] - u[:, :-1]) / hx
        Fy[1:-1, :] = -Dfy * (u[1:, :] - u[:-1, :]) / hy
        div = (Fx[:, 1:] - Fx[:, :-1]) / hx + (Fy[1:, :] - Fy[:-1, :]) / hy
        return (-div + u * (rc - gamma * u)).ravel()

    n = Nx * Ny
    J = sp.diags([1.0] * 5, [-Nx, -1, 0, 1, Nx], shape=(n, n))
    sol = solve_ivp(f, (0.0, t_eval[-1]), u0_fn(Y, X).ravel(), t_eval=t_eval, method="BDF",
                    rtol=rtol, atol=1e-12, jac_sparsity=J)
    assert sol.success
    return y, x, sol.y.T.reshape(len(t_eval), Ny, Nx)
