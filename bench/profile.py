"""``--profile``: py-spy records the server while a row runs; a short summary is printed.

The raw output (collapsed stacks, one ``frame;frame;... count`` line per stack) stays in
``bench/results/profiles/<server>-<row>.txt`` for flame graphs or grep; ``summarise``
turns it into the functions that hold the most samples, inclusive and self.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# frames that are on every stack and say nothing about where a request spends its time
_EVERYWHERE = ("process ", "thread ", "<module>", "run (", "_bootstrap", "_run_once",
               "run_for_one", "run_forever", "handle (", "process_request",
               "init_process", "spawn_worker", "spawn_workers", "manage_workers", "main (",
               "start (", "accept (", "wsgi_app (", "__call__ (")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


class Recorder:
    """``py-spy record`` of ``pid`` and its subprocesses for ``seconds``, in the background."""

    def __init__(self, pid: int, output: Path, seconds: int):
        output.parent.mkdir(parents=True, exist_ok=True)
        self.output = output
        self.process = subprocess.Popen(
            [py_spy(), "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil",
             "--nolineno", "--rate", "100", "--duration", str(seconds), "--format", "raw",
             "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait(self) -> None:
        _, stderr = self.process.communicate(timeout=120)
        if self.process.returncode != 0:
            print(f"py-spy failed: {stderr[-500:]}", file=sys.stderr)
            return
        print(summarise(self.output.read_text()), flush=True)


# where a sample's time goes: the first category (in this order) with a frame on the stack
CATEGORIES = (
    ("argon2id verification", ("(argon2/",)),
    ("RSA sign/verify (cryptography via joserfc)", ("_RSAAlgModel.sign ", "_RSAAlgModel.verify ")),
    ("audit row (app/audit.py)", ("(app/audit.py)",)),
    ("request log line (app/logging.py)", ("_finish (app/logging.py)",)),
    ("PostgreSQL client (SQLAlchemy, psycopg)",
     ("(sqlalchemy/", "(psycopg/", "(flask_sqlalchemy/")),
    ("Redis client (redis-py)", ("(redis/",)),
    ("rest of JOSE (joserfc)", ("(joserfc/",)),
    ("rest of Authlib", ("(authlib/",)),
    ("our code (app/, idp/, keys/)", ("(app/", "(idp/", "(keys/")),
    ("Flask and Werkzeug", ("(flask/", "(werkzeug/")),
    ("WSGI server (gunicorn, granian)", ("(gunicorn/", "(granian/")),
)


def breakdown(raw: str) -> list[tuple[str, float]]:
    """Each category's share of the samples (see ``CATEGORIES``), largest first."""
    shares: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(raw):
        total += count
        stack = ";".join(frames)
        shares[next((name for name, marks in CATEGORIES
                     if any(mark in stack for mark in marks)), "other")] += count
    return [(name, n / total) for name, n in shares.most_common()] if total else []


def _stacks(raw: str):
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def summarise(raw: str, top: int = 25) -> str:
    """The functions with the most samples: inclusive (on the stack) and self (the leaf)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(raw):
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if not frame.startswith(_EVERYWHERE):
                inclusive[frame] += count
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; by category:"]
    lines += [f"    {share:6.1%}  {name}" for name, share in breakdown(raw)]
    lines.append("  inclusive:")
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in own.most_common(top // 2)]
    return "\n".join(lines)
