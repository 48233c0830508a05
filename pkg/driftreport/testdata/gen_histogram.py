#!/usr/bin/python3
"""Generates histogram.json: the bins and shares of a drift report's
histogram computed with numpy, the oracle of pkg/driftreport's Histogram.

Run with Debian's python3 (python3-numpy): /usr/bin/python3 gen_histogram.py

Numerical features, as the contract's psi: edges =
numpy.unique(numpy.quantile(ref, [0.1, ..., 0.9])), a value's bin is
numpy.searchsorted(edges, x, side="right"), a bin's share its count over
the side's values. Categorical features: every category's share on each
side, the top 20 by reference share + current share (ties by name), the
rest summed in one "other" bin.
"""
import json
import numpy as np

rng = np.random.default_rng(12)


def numerical(name, ref, cur):
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    n = len(edges) + 1
    rc = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=n)
    cc = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=n)
    return {"name": name, "kind": "numerical", "ref": ref.tolist(), "cur": cur.tolist(),
            "edges": edges.tolist(), "reference": (rc / len(ref)).tolist(), "current": (cc / len(cur)).tolist()}


def categorical(name, ref, cur):
    cats = sorted(set(ref) | set(cur))
    rcount = {c: ref.count(c) for c in cats}
    ccount = {c: cur.count(c) for c in cats}
    r = {c: rcount[c] / len(ref) for c in cats}
    q = {c: ccount[c] / len(cur) for c in cats}
    order = sorted(cats, key=lambda c: (-(r[c] + q[c]), c))
    top, rest = order[:20], order[20:]
    out = {"name": name, "kind": "categorical", "ref": ref, "cur": cur, "categories": top,
           "reference": [r[c] for c in top], "current": [q[c] for c in top], "other": bool(rest)}
    if rest:
        out["categories"] = top + ["other"]
        out["reference"].append(sum(r[c] for c in rest))
        out["current"].append(sum(q[c] for c in rest))
    return out


cases = [
    numerical("normal_shifted", np.round(rng.normal(0, 1, 3000), 4), np.round(rng.normal(0.4, 1.2, 1200), 4)),
    # Few distinct values: edges repeat (unique keeps fewer) and many values
    # sit exactly on an edge, where side="right" decides the bin.
    numerical("discrete_ties", rng.integers(0, 5, 2000).astype(float), rng.integers(0, 7, 900).astype(float)),
    numerical("constant_reference", np.full(500, 3.0), np.round(rng.normal(3, 1, 300), 3)),
]
names = ["c%02d" % i for i in range(35)]
weights = np.linspace(3, 0.2, 35)
cref = list(rng.choice(names, 4000, p=weights / weights.sum()))
cw = weights[::-1].copy()
ccur = list(rng.choice(names + ["new1", "new2"], 1500, p=np.append(cw, [1, 2]) / (cw.sum() + 3)))
cases.append(categorical("many_categories", [str(c) for c in cref], [str(c) for c in ccur]))
cases.append(categorical("few_categories", [str(c) for c in rng.choice(["a", "b", "c"], 600)],
                         [str(c) for c in rng.choice(["a", "b", "d"], 400, p=[0.5, 0.3, 0.2])]))
with open("histogram.json", "w") as f:
    json.dump({"generator": "gen_histogram.py", "cases": cases}, f)
