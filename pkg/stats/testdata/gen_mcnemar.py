#!/usr/bin/python3
"""Oracle cases for stats.McNemarExact and stats.WilcoxonApprox.

McNemar's exact test is the two-sided binomial test of the discordant
pairs, as statsmodels' mcnemar(table, exact=True): p = min(1, 2 *
binom.cdf(min(b, c), b + c, 0.5)); scipy.stats.binomtest(b, b + c, 0.5)
gives the same p-value for p = 0.5 (checked below).

Wilcoxon's signed-rank test is scipy.stats.wilcoxon(d, zero_method="wilcox",
correction=False, alternative="two-sided", method="approx").

Run: /usr/bin/python3 pkg/stats/testdata/gen_mcnemar.py > pkg/stats/testdata/mcnemar.json
"""
import json

import numpy as np
import scipy
from scipy import stats


def mcnemar(b, c):
    n = b + c
    if n == 0:
        return 1.0
    p = min(1.0, 2 * stats.binom.cdf(min(b, c), n, 0.5))
    bt = stats.binomtest(b, n, 0.5).pvalue
    assert abs(bt - p) <= 1e-12 * max(1.0, p), (b, c, p, bt)
    return float(p)


mc = []
for b, c in [(0, 0), (0, 1), (1, 0), (3, 3), (5, 0), (10, 2), (2, 10), (12, 18), (25, 40),
             (40, 25), (100, 100), (150, 120), (7, 23), (300, 350), (1000, 1100), (5000, 5200),
             (0, 30), (1, 60), (400, 600)]:
    mc.append({"b": b, "c": c, "p_value": mcnemar(b, c)})

rng = np.random.default_rng(10)
wx = []
for name, d in [
    ("small", [1.5, -0.5, 2.0, 3.0, -1.0, 0.25, 4.0, -2.5]),
    ("ties_and_zeros", [1, 1, -1, 0, 2, 2, -2, 0, 3, 1, 1, -3, 0.5]),
    ("normal_shift", list(np.round(rng.normal(0.2, 1, 120), 3))),
    ("no_shift", list(np.round(rng.normal(0, 1, 300), 2))),
    ("abs_error_diffs", list(np.round(np.abs(rng.normal(0, 1.1, 200)) - np.abs(rng.normal(0, 1, 200)), 2))),
]:
    res = stats.wilcoxon(d, zero_method="wilcox", correction=False, alternative="two-sided", method="approx")
    wx.append({"name": name, "d": [float(x) for x in d], "statistic": float(res.statistic), "p_value": float(res.pvalue)})

print(json.dumps({"generated_with": "scipy " + scipy.__version__, "mcnemar": mc, "wilcoxon": wx}, indent=1))
