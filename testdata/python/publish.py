#!/usr/bin/env python3
"""A small Lookout client for Python, standard library only: NATS's text
protocol over a socket. It publishes predictions and feedback with
JetStream acknowledgements (the server stored them) and Lookout's verdicts
(ingest or the feedback service accepted or rejected them, and why).

Use it as a program:

    python3 publish.py [--user U --password P] [--feedback] URL MODEL FILE|-
    python3 publish.py nats://127.0.0.1:4222 churn predictions.jsonl
    python3 publish.py --feedback nats://127.0.0.1:4222 churn labels.jsonl
    python3 publish.py nats://127.0.0.1:4222 churn 100     # 100 demo predictions

FILE holds one JSON object a line (a prediction or a feedback event, as
Lookout's contract describes them). It prints, like `lookout publish`,
"published N, acknowledged N, accepted A, rejected R" and one line for each
rejected line with its reasons; the exit code is 1 when anything was not
stored.

Or as a module:

    from publish import Client
    c = Client("nats://127.0.0.1:4222", user="app", password="...")
    result = c.publish("churn", [{"version": "v3", "prediction": 0.8}])
    result = c.publish("churn", [{"id": "p-1", "label": "churn"}], feedback=True)
    c.close()

How it works, for porting it to another language:

- CONNECT with {"headers": true, "no_responders": true} (and "user",
  "pass" when given; a URL nats://user:pass@host:port works too).
- SUB _INBOX.<random>.> once: JetStream acknowledgements and Lookout's
  verdicts both come there.
- For message i: HPUB lookout.ingest.<model> (or lookout.feedback.<model>)
  with reply subject _INBOX.<random>.ack.<i> and the header
  "Lookout-Verdict-To: _INBOX.<random>.verdict.<i>". JetStream answers the
  reply subject with {"stream": ..., "seq": N} once it stored the message
  (or {"error": ...}; a 503 status header means no stream captures the
  subject). Ingest (predictions) or the feedback service answers the
  verdict subject with {"accepted": true} or {"accepted": false,
  "reasons": [{"field": ..., "code": ..., "message": ...}]}.
- Answer PING with PONG.

A user with Lookout's `publisher` role may do all of this: publish on
lookout.ingest.> and lookout.feedback.>, receive on _INBOX.>.

json.dumps writes NaN for float('nan'), which Lookout rejects with the
reason `not_finite`.
"""
import json
import os
import random
import socket
import sys
import time
from urllib.parse import unquote, urlparse

VERDICT_HEADER = "Lookout-Verdict-To"


class NATS:
    """The smallest useful NATS client: CONNECT, HPUB, SUB, MSG/HMSG,
    PING/PONG."""

    def __init__(self, url, user=None, password=None, name="lookout-python"):
        u = urlparse(url)
        user = user or (unquote(u.username) if u.username else None)
        password = password or (unquote(u.password) if u.password else None)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), timeout=10)
        self.buf = b""
        info = self._line()
        if not info.startswith(b"INFO "):
            raise RuntimeError(f"not a NATS server: {info!r}")
        opts = {"verbose": False, "pedantic": False, "name": name, "headers": True, "no_responders": True,
                "lang": "python-stdlib", "version": "1"}
        if user is not None:
            opts["user"], opts["pass"] = user, password or ""
        self.sock.sendall(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
        # The server answers the PING with PONG once CONNECT is accepted,
        # or with -ERR (e.g. 'Authorization Violation').
        while True:
            line = self._line()
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                raise RuntimeError(f"connect: {line.decode()}")

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def sub(self, subject, sid):
        self.sock.sendall(f"SUB {subject} {sid}\r\n".encode())

    def hpub(self, subject, payload, reply, headers):
        head = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        hb = head.encode()
        line = f"HPUB {subject} {reply} {len(hb)} {len(hb) + len(payload)}\r\n"
        self.sock.sendall(line.encode() + hb + payload + b"\r\n")

    def next_msg(self, timeout):
        """Returns (subject, status, payload) of the next MSG or HMSG,
        answering PINGs on the way; status is the header line's status
        code ("503" for no responders), or "" for none."""
        self.sock.settimeout(timeout)
        try:
            while True:
                line = self._line()
                if line == b"PING":
                    self.sock.sendall(b"PONG\r\n")
                elif line.startswith(b"MSG "):
                    parts = line.split()
                    return parts[1].decode(), "", self._exactly(int(parts[-1]))
                elif line.startswith(b"HMSG "):
                    parts = line.split()
                    hlen, total = int(parts[-2]), int(parts[-1])
                    data = self._exactly(total)
                    status_line = data[:hlen].split(b"\r\n", 1)[0].split()
                    status = status_line[1].decode() if len(status_line) > 1 else ""
                    return parts[1].decode(), status, data[hlen:]
                elif line.startswith(b"-ERR"):
                    raise RuntimeError(line.decode())
        finally:
            self.sock.settimeout(10)

    def close(self):
        self.sock.close()


class Client:
    """Publishes Lookout predictions and feedback; see the module doc."""

    def __init__(self, url="nats://127.0.0.1:4222", user=None, password=None, prefix="lookout"):
        self.nc = NATS(url, user, password)
        self.prefix = prefix
        self.inbox = "_INBOX." + os.urandom(8).hex()
        self.nc.sub(self.inbox + ".>", 1)

    def publish(self, model, events, feedback=False, wait=30.0):
        """Publishes events (dicts, or bytes sent as they are) on the
        model's subject and waits up to `wait` seconds for every
        acknowledgement and verdict. Returns a dict: published, acknowledged,
        accepted, rejected (a list of (index, reasons)), not_stored (a list
        of (index, error)) and pending (stored, no verdict within the wait)."""
        kind = "feedback" if feedback else "ingest"
        subject = f"{self.prefix}.{kind}.{model}"
        n = 0
        for i, e in enumerate(events):
            payload = e if isinstance(e, bytes) else json.dumps(e).encode()
            self.nc.hpub(subject, payload, f"{self.inbox}.ack.{i}", {VERDICT_HEADER: f"{self.inbox}.verdict.{i}"})
            n += 1
        acks, verdicts, errors = {}, {}, {}
        deadline = time.monotonic() + wait
        while (len(acks) + len(errors) < n or any(i not in verdicts for i in acks)) and time.monotonic() < deadline:
            try:
                subj, status, data = self.nc.next_msg(max(0.01, deadline - time.monotonic()))
            except socket.timeout:
                break
            kind_, _, idx = subj[len(self.inbox) + 1:].partition(".")
            if not idx.isdigit():
                continue
            i = int(idx)
            if kind_ == "ack":
                if status == "503":
                    errors[i] = f"no stream captures {subject}: is Lookout running?"
                    continue
                ack = json.loads(data)
                if "error" in ack:
                    errors[i] = ack["error"].get("description", str(ack["error"]))
                else:
                    acks[i] = ack
            elif kind_ == "verdict" and i not in verdicts:
                verdicts[i] = json.loads(data)
        rejected = sorted((i, v.get("reasons", [])) for i, v in verdicts.items() if not v.get("accepted") and not v.get("duplicate"))
        return {
            "published": n,
            "acknowledged": len(acks),
            "accepted": sum(1 for v in verdicts.values() if v.get("accepted")),
            "duplicates": sum(1 for v in verdicts.values() if v.get("duplicate")),
            "rejected": rejected,
            "not_stored": sorted(errors.items()),
            "pending": sum(1 for i in acks if i not in verdicts),
        }

    def close(self):
        self.nc.close()


def demo_events(count):
    rng = random.Random(1)
    return [{
        "id": f"py-{i}",
        "version": "py-1",
        "features": {"age": 30 + i % 40, "plan": rng.choice(["free", "pro"]), "score_in": rng.random()},
        "prediction": rng.random(),
        "confidence": 0.5 + rng.random() / 2,
    } for i in range(count)]


def main(argv):
    user = password = None
    feedback = False
    args = []
    it = iter(argv)
    for a in it:
        if a == "--user":
            user = next(it)
        elif a == "--password":
            password = next(it)
        elif a == "--feedback":
            feedback = True
        else:
            args.append(a)
    if len(args) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    url, model, source = args
    if source.isdigit():
        events = demo_events(int(source))
    else:
        f = sys.stdin.buffer if source == "-" else open(source, "rb")
        with f:
            events = [line.strip() for line in f if line.strip()]
    c = Client(url, user, password)
    r = c.publish(model, events, feedback=feedback)
    c.close()
    print(f"published {r['published']}, acknowledged {r['acknowledged']}, accepted {r['accepted']}, rejected {len(r['rejected'])}")
    for i, reasons in r["rejected"]:
        why = "; ".join(f"{x.get('field', '')}: {x.get('message', '')} ({x.get('code', '')})" for x in reasons)
        print(f"rejected line {i + 1}: {why}")
    for i, err in r["not_stored"]:
        print(f"not stored line {i + 1}: {err}")
    if r["pending"]:
        print(f"no verdict yet for {r['pending']} stored events (they are kept and handled once Lookout runs)")
    return 1 if r["not_stored"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
