#!/usr/bin/python3
"""Generates mmd.json: embedding drift figures computed with numpy, the
oracle of pkg/driftreport's embedding drift.

Run with Debian's python3 (python3-numpy): /usr/bin/python3 gen_mmd.py

As Alibi Detect's MMDDrift (backend pytorch, GaussianRBF with sigma
inferred): pool x (reference) and y (window), squared distances of every
pair, sigma = sqrt(0.5 * sorted(all n*n entries)[n + (n*n - n)//2 - 1]),
kernel exp(-d / (2 sigma^2)), diagonal zeroed, and the unbiased
MMD^2 = sum(Kxx)/(n(n-1)) + sum(Kyy)/(m(m-1)) - 2 mean(Kxy). The centroid
distance is the Euclidean distance between the two mean vectors.
"""
import json
import numpy as np


def figures(x, y):
    z = np.concatenate([x, y])
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    n_all = z.shape[0]
    n_median = n_all + (n_all * n_all - n_all) // 2 - 1
    sigma = np.sqrt(0.5 * np.sort(d.flatten())[n_median])
    k = np.exp(-d / (2 * sigma ** 2))
    np.fill_diagonal(k, 0)
    n, m = x.shape[0], y.shape[0]
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[n:, :n]
    mmd2 = kxx.sum() / (n * (n - 1)) + kyy.sum() / (m * (m - 1)) - 2 * kxy.mean()
    return float(sigma), float(mmd2), float(np.linalg.norm(x.mean(0) - y.mean(0)))


rng = np.random.default_rng(14)
cases = []
for name, n, m, dim, shift in [("stable", 120, 80, 8, 0.0), ("shifted", 150, 100, 16, 0.3), ("small", 30, 20, 3, 1.0)]:
    x = np.round(rng.standard_normal((n, dim)), 6)
    y = np.round(rng.standard_normal((m, dim)) + shift, 6)
    sigma, mmd2, centroid = figures(x, y)
    cases.append({"name": name, "x": x.tolist(), "y": y.tolist(), "sigma": sigma, "mmd2": mmd2, "centroid_distance": centroid})
with open("mmd.json", "w") as f:
    json.dump({"generator": "gen_mmd.py", "cases": cases}, f)
