#!/usr/bin/python3
"""gen.py writes the cases pkg/cbpe's tests match to 1e-9: scikit-learn's
IsotonicRegression(out_of_bounds="clip", increasing=True) fits and
predictions, NannyML's expected calibration error (equal-count bins over the
sorted confidences, stable sort for ties), roc_auc_score, and the CBPE
estimate with its calibration decision.

Run: /usr/bin/python3 pkg/cbpe/testdata/gen.py (Debian python3-sklearn).
"""
import json
import os

import numpy as np
import sklearn
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

BINS = 10
FOLDS = 10
MIN_LABELLED = 20
AUC_MAX = 0.999


def bin_edges(n, bins):
    # NannyML's _get_bin_index_edges.
    if n <= 2 * bins:
        bins = n // 2
    width = n // bins
    edges = list(range(0, n + 1, width))
    edges[-1] = n
    return list(zip(edges[:-1], edges[1:]))


def ece(correct, conf, edges):
    # NannyML's _calculate_expected_calibration_error, with a stable sort so
    # that tied confidences keep their order (numpy's default quicksort
    # leaves that order unspecified).
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    order = conf.argsort(kind="stable")
    conf, correct = conf[order], correct[order]
    terms = []
    for lo, hi in edges:
        terms.append((hi - lo) / len(conf) * abs(np.mean(conf[lo:hi]) - np.mean(correct[lo:hi])))
    return float(np.sum(terms))


def iso():
    return IsotonicRegression(out_of_bounds="clip", increasing=True)


def cbpe(ref_conf, ref_correct, windows):
    ref_conf = np.asarray(ref_conf, float)
    ref_correct = np.asarray(ref_correct, float)
    out = {"auc": None, "ece_before": None, "ece_after": None}
    calibrate = False
    reason = ""
    if len(ref_conf) < MIN_LABELLED:
        reason = "few"
    elif len(np.unique(ref_correct)) == 1:
        reason = "one_class"
    else:
        auc = float(roc_auc_score(ref_correct, ref_conf))
        out["auc"] = auc
        if auc > AUC_MAX:
            reason = "separable"
        else:
            # Out-of-fold calibration on unshuffled K folds: deterministic,
            # where NannyML draws StratifiedShuffleSplit(random_state=42).
            oof = np.empty(len(ref_conf))
            for train, test in KFold(n_splits=FOLDS).split(ref_conf):
                r = iso().fit(ref_conf[train], ref_correct[train])
                oof[test] = r.predict(ref_conf[test])
            edges = bin_edges(len(ref_conf), BINS)
            before = ece(ref_correct, ref_conf, edges)
            after = ece(ref_correct, oof, edges)
            out["ece_before"], out["ece_after"] = before, after
            calibrate = after < before
            reason = "lower_ece" if calibrate else "no_gain"
    if calibrate:
        r = iso().fit(ref_conf, ref_correct)
        f = lambda c: r.predict(np.asarray(c, float))
    else:
        f = lambda c: np.asarray(c, float)
    out["calibrated"] = calibrate
    out["reason"] = reason
    out["reference_accuracy"] = float(np.mean(f(ref_conf)))
    out["window_accuracy"] = [float(np.mean(f(w))) for w in windows]
    return out


def main():
    rng = np.random.default_rng(20261202)
    cases = {"sklearn": sklearn.__version__, "isotonic": [], "ece": [], "cbpe": []}

    def add_iso(name, x, y, q):
        r = iso().fit(x, y)
        cases["isotonic"].append({
            "name": name, "x": list(map(float, x)), "y": list(map(float, y)),
            "x_thresholds": list(map(float, r.X_thresholds_)),
            "y_thresholds": list(map(float, r.y_thresholds_)),
            "query": list(map(float, q)), "predict": list(map(float, r.predict(np.asarray(q, float)))),
        })

    add_iso("tiny", [1, 2, 3], [3, 1, 2], [0, 1, 1.5, 2, 2.5, 3, 4])
    add_iso("single", [0.5, 0.5, 0.5], [1, 0, 1], [0, 0.5, 1])
    add_iso("increasing", [0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], [0.15, 0.25, 0.35, 0.5])
    add_iso("decreasing", [0.1, 0.2, 0.3, 0.4, 0.5], [5, 4, 3, 2, 1], [0.1, 0.3, 0.6])
    add_iso("equal_y_runs", [1, 2, 3, 4, 5, 6], [1, 1, 1, 0, 0, 2], [1.5, 3.5, 5.5])
    add_iso("near_ties", [0.3, 0.3 + 1e-16, 0.3 + 2e-15, 0.7, 0.7], [1, 0, 0, 1, 0], [0.3, 0.31, 0.69, 0.7])
    for i in range(12):
        n = int(rng.integers(5, 400))
        if i % 3 == 0:
            x = np.round(rng.uniform(0.3, 1, n), 2)  # many ties
        else:
            x = rng.uniform(0.3, 1, n)
        if i % 2 == 0:
            y = (rng.uniform(size=n) < x ** 2).astype(float)
        else:
            y = x + rng.normal(0, 0.2, n)
        q = np.concatenate([rng.uniform(0.2, 1.05, 30), x[:5]])
        add_iso(f"random{i}", x, y, q)

    for i in range(10):
        n = int(rng.integers(4, 300)) if i else 7
        c = np.round(rng.uniform(0.4, 1, n), 2 if i % 2 else 6)
        k = (rng.uniform(size=n) < c).astype(float)
        cases["ece"].append({"conf": list(map(float, c)), "correct": list(map(float, k)),
                             "ece": ece(k, c, bin_edges(n, BINS))})

    for i in range(16):
        n = int(rng.integers(10, 2000)) if i != 1 else 15
        c = rng.beta(5, 1.5, n)
        if i % 4 == 3:
            c = np.round(c, 2)
        if i % 2 == 0:
            p = c  # calibrated
        else:
            p = c ** 3  # overconfident
        if i == 5:
            k = np.ones(n)
        elif i == 7:
            k = (c > 0.8).astype(float)  # separable
        else:
            k = (rng.uniform(size=n) < p).astype(float)
        wins = [rng.beta(float(a), 1.5, int(rng.integers(1, 500))) for a in (5, 3, 1.5)]
        out = cbpe(c, k, wins)
        out.update({"ref_conf": list(map(float, c)), "ref_correct": list(map(float, k)),
                    "windows": [list(map(float, w)) for w in wins]})
        cases["cbpe"].append(out)

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sklearn_cases.json")
    with open(path, "w") as f:
        json.dump(cases, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
