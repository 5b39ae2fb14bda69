"""The supply chain: what is installed comes from lock files that pin every package with the hashes of its
files, the locks keep up with pyproject.toml, and no installed distribution runs code at every Python start
through a ``.pth`` file that nobody vouched for."""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
import tomllib
from collections import defaultdict
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# lock -> the extras of pyproject.toml it must hold beside the runtime dependencies
LOCKS = {"runtime.txt": [], "dev.txt": ["dev"], "dev-embeddings.txt": ["dev", "local-embeddings"]}
RELOCK = "pyproject.toml changed without `make lock`"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)")


def pins(lock: str) -> dict[str, set[Version]]:
    """Each package of a lock with its pinned versions (several where markers split by platform)."""
    found: dict[str, set[Version]] = defaultdict(set)
    for line in (REQUIREMENTS / lock).read_text().splitlines():
        if match := _PIN.match(line):
            found[canonicalize_name(match.group(1))].add(Version(match.group(2)))
    return dict(found)


def declared(extras: list[str]) -> list[Requirement]:
    """What pyproject.toml asks for: the build backend, the runtime dependencies and ``extras``."""
    texts = [*PYPROJECT["build-system"]["requires"], *PYPROJECT["project"]["dependencies"]]
    for extra in extras:
        texts += PYPROJECT["project"]["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_dependency_of_pyproject_is_locked_at_a_version_it_allows(lock: str) -> None:
    locked = pins(lock)
    missing, outside = [], []
    for requirement in declared(LOCKS[lock]):
        versions = locked.get(canonicalize_name(requirement.name))
        if not versions:
            missing.append(requirement.name)
        elif not all(requirement.specifier.contains(v, prereleases=True) for v in versions):
            outside.append(f"{requirement} (locked: {', '.join(map(str, sorted(versions)))})")
    assert not missing, f"{RELOCK}: not in requirements/{lock}: {missing}"
    assert not outside, f"{RELOCK}: requirements/{lock} pins versions pyproject.toml refuses: {outside}"


def test_the_locks_agree_so_production_runs_what_was_tested() -> None:
    runtime, dev, embeddings = pins("runtime.txt"), pins("dev.txt"), pins("dev-embeddings.txt")
    assert {name: v for name, v in runtime.items() if dev.get(name) != v} == {}
    assert {name: v for name, v in dev.items() if embeddings.get(name) != v} == {}


@pytest.mark.parametrize("lock", [*LOCKS, "tools.txt"])
def test_every_locked_package_is_pinned_with_hashes_and_from_the_default_index(lock: str) -> None:
    text = (REQUIREMENTS / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])  # one entry per package, header off
    unhashed = [entry.split()[0] for entry in entries if _PIN.match(entry) and "--hash=sha256:" not in entry]
    assert not unhashed
    statements = [
        line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    loose = [s for s in statements if not _PIN.match(s) and not s.startswith("--hash=") and s != "\\"]
    assert not loose, f"only pins and hashes (no URL, path, editable or index option): {loose}"


def test_pytorch_is_pinned_once_and_left_out_of_the_hashed_locks() -> None:
    """The right PyTorch build depends on the machine (CPU, CUDA): it is installed from torch.txt first."""
    (torch,) = [
        Requirement(line)
        for line in (REQUIREMENTS / "torch.txt").read_text().splitlines()
        if line[:1].isalpha()
    ]
    assert torch.name == "torch" and str(torch.specifier).startswith("==")
    for lock in LOCKS:
        assert "torch" not in pins(lock)
    assert "nvidia-cublas" not in pins("dev-embeddings.txt")  # nor the CUDA libraries that only it needs
    assert "-r requirements/torch.txt" in (ROOT / ".ci" / "run").read_text()


def make_commands(*arguments: str) -> list[str]:
    """What ``make`` would run from scratch (``-B -n``: every target out of date, nothing executed).

    The outer ``make test`` passes its command-line variables (CI's ``EXTRAS=...``) down, through MAKEFLAGS
    and as environment variables; they are dropped so each case sees only its own arguments."""
    outer = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "EXTRAS"}
    environment = {k: v for k, v in os.environ.items() if k not in outer}
    done = subprocess.run(
        ["make", "-B", "-n", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.splitlines()


def check_installs(where: str, commands: list[str]) -> None:
    installs = [command for command in commands if "pip install" in command]
    assert installs, where
    for command in installs:
        locked = "--require-hashes" in command and " -r requirements/" in command
        hutch_alone = "--no-deps" in command and "--no-build-isolation" in command
        torch_first = "-r requirements/torch.txt" in command
        assert locked or hutch_alone or torch_first, f"{where}: {command}"


@pytest.mark.parametrize(
    ("target", "lock"),
    [
        (["run"], "requirements/runtime.txt"),
        (["test"], "requirements/dev.txt"),
        (["test", "EXTRAS=dev,local-embeddings"], "requirements/dev-embeddings.txt"),
    ],
)
def test_make_installs_from_the_lock_and_then_hutch_alone(target: list[str], lock: str) -> None:
    commands = make_commands(*target)
    check_installs(f"make {' '.join(target)}", commands)
    assert any(f"--require-hashes -r {lock}" in command for command in commands)
    assert any(command.endswith("--no-deps --no-build-isolation -e .") for command in commands)


def test_ci_and_the_image_install_from_the_locks() -> None:
    """CI installs PyTorch, then runs make; the image installs the runtime lock, then Hutch alone."""
    for path in ("deploy/Dockerfile", ".ci/run"):
        text = re.sub(r"\\\n\s*", " ", (ROOT / path).read_text())
        check_installs(path, re.findall(r"pip install[^\n]*", text) or ["(no pip install)"])
    assert "--require-hashes -r requirements/runtime.txt" in (ROOT / "deploy" / "Dockerfile").read_text()


# --- .pth files ---------------------------------------------------------------------------------------------

# Python runs every line of a .pth file that starts with "import" at each start-up of the environment, before
# any of Hutch's code: a place to hide code. These are the ones with a reason to be there, each checked for
# the content that reason needs.
ALLOWED_PTH: dict[str, tuple[str, Callable[[str], bool]]] = {
    # The editable install of Hutch itself (`pip install -e .` with hatchling): one line, the src folder.
    "_editable_impl_hutch.pth": ("hutch", lambda text: text.strip() == str(ROOT / "src")),
    # setuptools (the copy `python -m venv` puts in every environment) makes its own distutils win over the
    # standard library's: one line calling _distutils_hack, nothing else.
    "distutils-precedence.pth": (
        "setuptools",
        lambda text: (
            len(text.strip().splitlines()) == 1
            and text.startswith("import os; var = 'SETUPTOOLS_USE_DISTUTILS'")
            and "__import__('_distutils_hack').add_shim()" in text
        ),
    ),
}


def site_packages() -> set[Path]:
    return {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}


def pth_owners() -> dict[Path, str]:
    """Each .pth file in this environment's site-packages, with the distribution whose RECORD lists it."""
    owners: dict[Path, str] = {}
    for distribution in metadata.distributions():
        for file in distribution.files or []:
            if file.name.endswith(".pth"):
                owners[Path(str(distribution.locate_file(file))).resolve()] = distribution.metadata["Name"]
    return owners


def test_no_installed_distribution_ships_an_unexpected_pth_file() -> None:
    owners = pth_owners()
    unexpected = []
    for folder in site_packages():
        for path in sorted(folder.glob("*.pth")):
            owner = owners.get(path.resolve(), "(no distribution lists it)")
            allowed = ALLOWED_PTH.get(path.name)
            if allowed is None or canonicalize_name(owner) != allowed[0] or not allowed[1](path.read_text()):
                unexpected.append(f"{path.name} from {owner}: {path.read_text()[:200]!r}")
    assert not unexpected, unexpected


def test_the_pth_check_sees_this_environment() -> None:
    """Hutch is installed editable for the tests, so its .pth file must be found: the check looks where
    Python does."""
    names = {path.name for folder in site_packages() for path in folder.glob("*.pth")}
    assert "_editable_impl_hutch.pth" in names
