"""`hutch runtime`: one agent on its own, for its platform only, remembering in its workspace files."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from httpx import AsyncClient

from hutch.core.security import sha256_hex
from hutch.runtimes.config import AgentSpec, ProviderKey, RuntimeConfig, read_config, write_config
from hutch.runtimes.server import create_runtime_app
from hutch.runtimes.workspace import Workspace
from hutch.settings import Settings
from tests.conftest import asgi_client
from tests.conversations.test_chat import tool_call
from tests.fakes.llm import FakeLLMServer, ScriptedReply
from tests.fakes.server import free_port, wait_until

TOKEN = "rt_" + "g" * 40


def runtime_config(llm_base: str, **agent: object) -> RuntimeConfig:
    spec = {
        "id": "agt_dedicated1",
        "org_id": "org_1",
        "slug": "jarvis",
        "name": "Jarvis",
        "role": "assistant",
        "system_prompt": "You are Jarvis, a concise assistant.",
        "model": "openai/gpt-4o-mini",
        "temperature": "0.3",
        "max_tokens": 500,
        "tools": ["remember", "forget", "current_time", "check_balance"],
    }
    spec.update(agent)
    return RuntimeConfig(
        agent=AgentSpec.model_validate(spec),
        org_name="Acme",
        provider_keys={"openai": ProviderKey(api_key="sk-org-own-key", base_url=llm_base)},  # type: ignore[arg-type]
        gateway_token_sha256=sha256_hex(TOKEN),
    )


@pytest.fixture
async def runtime(
    settings: Settings, tmp_path: Path, fake_llm_server: FakeLLMServer
) -> AsyncIterator[AsyncClient]:
    app = create_runtime_app(runtime_config(fake_llm_server.api_base), tmp_path / "workspace", settings)
    async with asgi_client(app) as client:
        yield client


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_only_the_platform_gets_answers(runtime: AsyncClient) -> None:
    assert (await runtime.get("/healthz")).json() == {"status": "ok", "agent": "jarvis"}
    body = {"model": "jarvis", "messages": [{"role": "user", "content": "hi"}]}
    assert (await runtime.post("/v1/chat/completions", json=body)).status_code == 401
    assert (
        await runtime.post("/v1/chat/completions", json=body, headers=bearer("rt_wrong"))
    ).status_code == 401


async def test_it_answers_with_the_history_it_is_given_and_the_org_key(
    runtime: AsyncClient, fake_llm: FakeLLMServer
) -> None:
    fake_llm.script(ScriptedReply(content="Paris, as you said."))
    body = {
        "model": "jarvis",
        "messages": [
            {"role": "user", "content": "I live in Paris."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Where do I live?"},
        ],
    }
    answer = await runtime.post("/v1/chat/completions", json=body, headers=bearer())
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Paris, as you said."
    assert answer.json()["usage"]["prompt_tokens"] > 0
    [sent] = fake_llm.requests
    assert sent.headers["authorization"] == "Bearer sk-org-own-key"  # the org's own key wins
    contents = [m.get("content") for m in sent.body["messages"]]
    assert "I live in Paris." in contents and "Where do I live?" in contents
    assert "Jarvis" in str(sent.body["messages"][0]["content"])
    assert "check_balance" not in str(sent.body.get("tools"))  # the balance lives on the platform


async def test_memories_are_files_in_the_workspace(
    runtime: AsyncClient, fake_llm: FakeLLMServer, settings: Settings, tmp_path: Path
) -> None:
    fake_llm.script(
        ScriptedReply(tool_calls=[tool_call("remember", {"fact": "Prefers tea over coffee."})]),
        ScriptedReply(content="I will remember that."),
        ScriptedReply(content="Tea, of course."),
    )
    said = {"model": "jarvis", "user": "ada", "messages": [{"role": "user", "content": "I prefer tea."}]}
    assert (await runtime.post("/v1/chat/completions", json=said, headers=bearer())).status_code == 200
    workspace = Workspace(tmp_path / "workspace")
    assert workspace.facts("api:ada") == ["Prefers tea over coffee."]
    assert "Prefers tea" in workspace.user_file("api:ada").read_text()

    # A new runtime on the same workspace (re-provisioned) still knows it, and says so to the model.
    config = runtime_config(fake_llm.api_base)
    async with asgi_client(create_runtime_app(config, tmp_path / "workspace", settings)) as again:
        asked = {**said, "messages": [{"role": "user", "content": "What do I drink?"}]}
        assert (await again.post("/v1/chat/completions", json=asked, headers=bearer())).status_code == 200
    assert "Prefers tea over coffee." in str(fake_llm.requests[-1].body["messages"][0]["content"])


def test_the_config_file_keeps_keys_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "runtime" / "agent.json"
    write_config(path, runtime_config("http://127.0.0.1:9/v1"))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = read_config(path)
    assert loaded.credentials()["openai"].api_key == "sk-org-own-key"


def test_hutch_runtime_serves_over_http_with_the_openai_sdk(
    tmp_path: Path, fake_llm_server: FakeLLMServer, settings: Settings
) -> None:
    fake_llm_server.reset()
    fake_llm_server.script(ScriptedReply(content="Hello from my own process."))
    config = tmp_path / "agent.json"
    write_config(config, runtime_config(fake_llm_server.api_base))
    port = free_port()
    env = {
        **os.environ,
        "HUTCH_DATA_DIR": str(tmp_path / "data"),
        "HUTCH_OPENAI_BASE_URL": fake_llm_server.api_base,
        "HUTCH_PROVIDER_URLS_ALLOW_PRIVATE": "true",
        "HUTCH_LLM_MAX_RETRIES": "0",
    }
    command = [
        sys.executable,
        "-m",
        "hutch.cli",
        "runtime",
        "--agent-config",
        str(config),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base), timeout=30)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=TOKEN)
        answer = client.chat.completions.create(model="jarvis", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "Hello from my own process."
        assert (tmp_path / "workspace").is_dir()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_bad_config_says_what_is_wrong_without_quoting_it(tmp_path: Path) -> None:
    config = tmp_path / "agent.json"
    key = "sk-never-printed-" + secrets.token_hex(16)
    config.write_text(json.dumps({"agent": {}, "provider_keys": {"openai": {"api_key": key, "base_url": 7}}}))

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hutch.cli", "runtime", "--agent-config", str(path), "--port", "1"],
            env={**os.environ, "HUTCH_DATA_DIR": str(tmp_path / "data")},
            capture_output=True,
            text=True,
        )

    invalid = run(config)
    said = invalid.stdout + invalid.stderr
    assert invalid.returncode == 1 and "is not valid" in said and "provider_keys.openai.base_url" in said
    assert key[-8:] not in said  # not even the tail pydantic would quote
    missing = run(tmp_path / "nowhere.json")
    assert missing.returncode == 1 and "Cannot read the agent config" in missing.stdout + missing.stderr
