#!/usr/bin/python3
"""Generates multivariate.json: PCA reconstruction drift computed with
scikit-learn, the oracle of pkg/driftreport's multivariate figure.

Run with Debian's python3 (python3-sklearn): /usr/bin/python3 gen_multivariate.py

The recipe (NannyML's data reconstruction drift, as Lookout does it):
numerical features standardised on the whole reference (StandardScaler),
each categorical feature one-hot over its reference categories (at most 10,
the most frequent) and those 0/1 columns standardised the same way; PCA
keeping the components that explain 65% of the variance, fitted on the
reference's even rows; the error of a row is the Euclidean distance between
it and pca.inverse_transform(pca.transform(row)); reference_mean is the mean
error of the reference's odd rows, error the mean error of the window.
"""
import json
import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler


def make(rng, n, corr, shift=0.0):
    z = rng.standard_normal((n, 2))
    a = z[:, 0]
    b = corr * z[:, 0] + np.sqrt(1 - corr * corr) * z[:, 1]
    c = np.exp(0.5 * rng.standard_normal(n)) + shift
    d = rng.integers(0, 5, n).astype(float)
    plan = rng.choice(["basic", "pro", "team"], size=n, p=[0.5, 0.3, 0.2])
    r6 = lambda x: np.round(x, 6).tolist()  # short JSON, the same numbers on both sides
    return {"a": r6(a), "b": r6(b), "c": r6(c), "d": d.tolist(), "plan": plan.tolist()}


def encode(ref, cur):
    cols_ref, cols_cur = [], []
    for name in sorted(ref):
        r, c = ref[name], cur[name]
        if isinstance(r[0], str):
            cats, counts = np.unique(r, return_counts=True)
            order = sorted(range(len(cats)), key=lambda i: (-counts[i], cats[i]))[:10]
            for i in order:
                cols_ref.append([1.0 if v == cats[i] else 0.0 for v in r])
                cols_cur.append([1.0 if v == cats[i] else 0.0 for v in c])
        else:
            cols_ref.append(r)
            cols_cur.append(c)
    return np.array(cols_ref).T, np.array(cols_cur).T


def case(name, seed, corr_ref, corr_cur, shift):
    rng = np.random.default_rng(seed)
    ref = make(rng, 1200, corr_ref)
    cur = make(rng, 400, corr_cur, shift)
    xr, xc = encode(ref, cur)
    scaler = StandardScaler().fit(xr)
    sr, sc = scaler.transform(xr), scaler.transform(xc)
    fit, held = sr[0::2], sr[1::2]
    pca = PCA(n_components=0.65, svd_solver="full").fit(fit)

    def errors(x):
        return np.linalg.norm(x - pca.inverse_transform(pca.transform(x)), axis=1)

    return {
        "name": name, "ref": ref, "cur": cur,
        "components": int(pca.n_components_),
        "error": float(errors(sc).mean()),
        "reference_mean": float(errors(held).mean()),
    }


cases = [
    case("stable", 1, 0.8, 0.8, 0.0),
    case("correlation_flip", 2, 0.8, -0.8, 0.0),
    case("shift", 3, 0.3, 0.3, 1.0),
]
with open("multivariate.json", "w") as f:
    json.dump({"generator": "gen_multivariate.py", "cases": cases}, f)
