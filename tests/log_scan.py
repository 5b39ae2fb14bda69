"""A pytest plugin: after the whole suite, the log output of every test is searched for secrets.

Every test's captured output (stdout, stderr and log records, passing tests included) is collected; at the
end it is searched for the literal secrets the suite uses (the secret key, test passwords) and for anything
shaped like a secret Hutch issues or holds (API keys, refresh and access tokens, bot tokens, provider and
Stripe keys, webhook secrets). A match fails the run and names the test that logged it.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import DEFAULT_PASSWORD

LITERALS = [
    TEST_SECRET_KEY,
    DEFAULT_PASSWORD,
    "a-long-enough-password",
    "long-enough-pw",
    "demo-password-2026",
]
SHAPES = {
    "API key": re.compile(r"\bhk_[A-Za-z0-9_-]{40,}"),
    "refresh token": re.compile(r"\brt_[A-Za-z0-9_-]{30,}"),
    "access token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "bot token": re.compile(r"\b\d{6,12}:AA[A-Za-z0-9_-]{30,}"),
    "provider key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "Stripe key": re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{10,}"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9_-]{20,}"),
    "password hash": re.compile(r"\$argon2(?:id|i|d)\$v=\d+\$m=\d+"),
    "Fernet key": re.compile(r"HUTCH_ENCRYPTION_KEYS=[A-Za-z0-9_-]{43}="),
}
_found: list[str] = []
_scanned = {"tests": 0, "bytes": 0}


def leaks_in(text: str) -> list[str]:
    found = [f"the literal secret {secret[:4]}…" for secret in LITERALS if secret in text]
    for kind, shape in SHAPES.items():
        match = shape.search(text)
        if match:
            found.append(f"a {kind} ({match.group(0)[:8]}…)")
    return found


def scan(source: str, text: str) -> None:
    """Search ``text`` (a test's output, or the log of a process a test started) for secrets."""
    _scanned["bytes"] += len(text)
    for leak in leaks_in(text):
        _found.append(f"{source}: {leak}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "secrets_in_logs" in report.keywords:  # a redaction test, fed secrets on purpose
        return
    text = "\n".join(content for _, content in report.sections)
    if text:
        _scanned["tests"] += 1
        scan(f"{report.nodeid} ({report.when})", text)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", "secrets found in the logs", red=True)
            for line in _found[:50]:
                reporter.write_line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
