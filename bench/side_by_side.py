"""Run benchmarks on an earlier revision and on the working tree, alternately, to see what a change costs.

    python bench/side_by_side.py --before <revision> [--after <revision>] bench_telegram.py [--rounds 2]

Each revision is checked out in a temporary git worktree (the working tree itself when --after is not
given); its benchmark scripts run with its own `src/` first on the Python path (the same virtualenv, so
both use the same libraries). Each round runs every named benchmark once per side, before then after, so
slow drift of the machine hits both alike. Each benchmark prints its tables under a header naming its side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(side: str, tree: Path, bench: str) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree / "bench"), str(tree)])
    print(f"\n===== {bench} — {side} ({tree}) =====", flush=True)
    started = time.perf_counter()
    code = subprocess.run([sys.executable, bench], cwd=tree / "bench", env=env).returncode
    print(f"===== {bench} — {side}: {time.perf_counter() - started:.0f} s, exit {code} =====", flush=True)
    return code


def checkout(where: Path, revision: str) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(where), revision], cwd=ROOT, check=True)
    return where


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--before", required=True, help="the revision to compare with (a commit, a tag)")
    parser.add_argument("--after", help="the revision to measure (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("benches", nargs="+", help="benchmark scripts in bench/, e.g. bench_telegram.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hutch-before-") as tmp:
        os.chmod(tmp, 0o755)  # as root, the embedded PostgreSQL runs as 'pgserver' and must reach it
        trees = {f"before ({args.before})": checkout(Path(tmp) / "before", args.before)}
        trees[f"after ({args.after or 'working tree'})"] = (
            checkout(Path(tmp) / "after", args.after) if args.after else ROOT
        )
        failed = 0
        try:
            for _ in range(args.rounds):
                for bench in args.benches:
                    for side, tree in trees.items():
                        failed += run(side, tree, bench) != 0
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
