"""Writes cases.jsonl: the str() of Python dicts, as an older OpenTelemetry
SDK puts a logged dict in a log record's body, beside the same dict as
JSON. Run with /usr/bin/python3 cases.py > cases.jsonl."""
import json

cases = [
    {"sepal length": 5.1, "pred": "setosa", "timestamp": 1668660679.587727, "request_id": "6413930528999883196"},
    {"a": 1, "b": -2, "c": 0.1, "d": 1e-05, "e": 1.5e300, "f": -0.0, "g": 10**20},
    {"t": True, "f": False, "n": None},
    {"quote": "it's", "dq": 'say "hi"', "both": "it's \"x\"", "bs": "a\\b", "nl": "a\nb\tc\r"},
    {"uni": "caf\u00e9 \u65e5\u672c", "ctrl": "\x00\x1f\x7f", "emoji": "\U0001F600", "nbsp": "\u00a0", "zw": "\u200b"},
    {"nested": {"schema": {"x": {"name": "x", "role": "feature", "type": "numerical"}}}, "list": [1, "two", [3.0, None]], "tuple": (1, 2)},
    {"": "empty key", "k": ""},
    {},
    {"bento_meta": {"bento_name": "iris_classifier", "bento_version": "not available", "monitor_name": "iris_classifier_prediction", "schema": {}}},
]
for d in cases:
    print(json.dumps({"repr": str(d), "json": d}))
