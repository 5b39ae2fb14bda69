"""Write Hutch's lock files from pyproject.toml: every package pinned, with the hashes of its files.

    make lock                 # add what pyproject.toml gained, keep every other pin
    make lock UPGRADE=1       # move every pin to the newest release pyproject.toml allows

Each lock is resolved for every platform Hutch runs on (``--universal``) from Python 3.11 up, and holds
the build backend and pip too, so ``pip install --require-hashes -r <lock>`` followed by
``pip install --no-deps --no-build-isolation -e .`` installs nothing that is not pinned and hashed.

PyTorch is the one exception (see ``dev-embeddings.txt``): its right build depends on the machine (CPU,
CUDA, ROCm), and the CPU build is not on the default index. It is pinned in ``torch.txt``, installed from
there before the lock, and left out of the lock together with what only it needs (the CUDA libraries).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# lock file -> the extras of pyproject.toml it holds beside the runtime dependencies, and the lock written
# before it whose pins it keeps: the widest is resolved first, so what production runs is what was tested.
LOCKS: dict[str, tuple[list[str], str | None]] = {
    "dev-embeddings.txt": (["dev", "local-embeddings"], None),
    "dev.txt": (["dev"], "dev-embeddings.txt"),
    "runtime.txt": ([], "dev.txt"),
}
# Packages installed before a lock by a step of their own, left out of it with what only they need.
INSTALLED_BEFORE = {"dev-embeddings.txt": {"torch"}}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def compile_lock(uv: str, name: str, extras: list[str], within: str | None, upgrade: bool) -> None:
    command = [
        uv,
        "pip",
        "compile",
        "pyproject.toml",
        "requirements/build.in",
        *(f"--extra={extra}" for extra in extras),
        "--constraint=requirements/torch.txt",
        *([f"--constraint=requirements/{within}"] if within else []),
        "--universal",
        "--python-version=3.11",
        "--generate-hashes",
        "--no-strip-markers",
        "--custom-compile-command=make lock",
        "--quiet",
        f"--output-file=requirements/{name}",
    ]
    if upgrade:
        command.append("--upgrade")
    subprocess.run(command, cwd=ROOT, check=True)  # noqa: S603 - our own arguments


def blocks(text: str) -> tuple[list[str], list[list[str]]]:
    """The header lines and one block of lines per pinned package (its pin, hashes and ``# via``)."""
    header: list[str] = []
    found: list[list[str]] = []
    for line in text.splitlines():
        if _PIN.match(line):
            found.append([line])
        elif found:
            found[-1].append(line)
        else:
            header.append(line)
    return header, found


def name_of(block: list[str]) -> str:
    match = _PIN.match(block[0])
    assert match is not None
    return canonical(match.group(1))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parents(block: list[str]) -> set[str]:
    """What pulled this package in, from uv's ``# via`` notes (``-r``/``-c`` inputs count as the user)."""
    notes = [line.strip().lstrip("#").strip() for line in block[1:] if line.strip().startswith("#")]
    names: set[str] = set()
    for note in notes:
        note = note.removeprefix("via").strip()
        if note:
            names.add("(input)" if note.startswith(("-r", "-c")) else canonical(note.split()[0]))
    return names


def leave_out(path: Path, installed_before: set[str]) -> list[str]:
    """Remove ``installed_before`` from the lock at ``path``, and every package only they pulled in."""
    header, found = blocks(path.read_text())
    gone = set(installed_before)
    changed = True
    while changed:
        changed = False
        for block in found:
            name, via = name_of(block), parents(block)
            if name not in gone and via and via <= gone:
                gone.add(name)
                changed = True
    kept = [block for block in found if name_of(block) not in gone]
    note = f"# Left out (installed before this file, from requirements/torch.txt): {', '.join(sorted(gone))}"
    path.write_text("\n".join([*header, note, *(line for block in kept for line in block)]) + "\n")
    return sorted(gone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--uv", default="uv", help="the uv executable")
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed")
    args = parser.parse_args()
    for name, (extras, within) in LOCKS.items():
        compile_lock(args.uv, name, extras, within, args.upgrade)
        if name in INSTALLED_BEFORE:
            gone = leave_out(HERE / name, INSTALLED_BEFORE[name])
            print(f"requirements/{name}: left out {', '.join(gone)}", file=sys.stderr)
        print(f"requirements/{name}: written", file=sys.stderr)


if __name__ == "__main__":
    main()
