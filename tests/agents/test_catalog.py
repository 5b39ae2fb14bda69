"""The model catalog: what `GET /api/v1/models` shows, the operator's own catalog file, prices, and how
the gateway picks a default model and the key a model is called with."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from hutch.engine.catalog import DEMO_MODEL, CatalogError, Credentials, ModelSpec, load_catalog
from hutch.engine.gateway import LLMGateway, ModelUnavailable
from hutch.settings import Settings
from tests.factories import create_account

REQUIRED_MODELS = {
    "anthropic/claude-sonnet-4-5": ("anthropic", "Claude Sonnet 4.5"),
    "anthropic/claude-opus-4-5": ("anthropic", "Claude Opus 4.5"),
    "anthropic/claude-haiku-4-5": ("anthropic", "Claude Haiku 4.5"),
    "openai/gpt-4o": ("openai", "GPT-4o"),
    "openai/gpt-4o-mini": ("openai", "GPT-4o mini"),
    "google/gemini-2.0-flash": ("google", "Gemini 2.0 Flash"),
    "google/gemini-2.0-flash-lite": ("google", "Gemini 2.0 Flash Lite"),
    "moonshot/moonshot-v1-8k": ("moonshot", "Moonshot v1 8k"),
    "moonshot/kimi-k2.5": ("moonshot", "Kimi K2.5"),
    "deepseek/deepseek-chat": ("deepseek", "DeepSeek V3 (chat)"),
    "demo/echo": ("demo", "Demo — no AI"),
}
NO_PROVIDER_KEYS = {
    "openai_api_key": None,
    "anthropic_api_key": None,
    "google_api_key": None,
    "moonshot_api_key": None,
    "deepseek_api_key": None,
    "openai_compatible_api_key": None,
    "openai_compatible_base_url": None,
    "ollama_base_url": None,
}


def write_catalog(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def with_catalog(settings: Settings, path: Path) -> Settings:
    return settings.model_copy(update={"model_catalog_file": path})


def model(model_id: str, input_price: str = "1", output_price: str = "2") -> ModelSpec:
    return ModelSpec(
        id=model_id,
        display_name=model_id,
        context_window=1000,
        input_usd_per_mtok=Decimal(input_price),
        output_usd_per_mtok=Decimal(output_price),
    )


async def test_models_lists_the_catalog_with_availability_from_configured_keys(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    response = await client.get("/api/v1/models", headers=owner.headers)
    assert response.status_code == 200, response.text
    models = {m["id"]: m for m in response.json()["items"]}
    for model_id, (provider, display_name) in REQUIRED_MODELS.items():
        assert model_id in models, model_id
        assert (models[model_id]["provider"], models[model_id]["display_name"]) == (provider, display_name)
    assert "deepseek/deepseek-reasoner" in models
    available = {m["provider"]: m["available"] for m in models.values()}
    # The test deployment configures Anthropic and OpenAI (the local fakes) and nothing else.
    assert available["anthropic"] is True and available["openai"] is True
    assert available["google"] is False and available["moonshot"] is False
    assert available["deepseek"] is False
    assert available["demo"] is True
    assert [m["id"] for m in models.values() if m["is_default"]] == ["anthropic/claude-sonnet-4-5"]
    assert [m["id"] for m in models.values() if m["is_demo"]] == [DEMO_MODEL]
    sonnet = models["anthropic/claude-sonnet-4-5"]
    assert (sonnet["input_usd_per_mtok"], sonnet["output_usd_per_mtok"]) == (3.0, 15.0)
    assert sonnet["context_window"] == 200_000


async def test_models_need_a_credential(client: AsyncClient) -> None:
    assert (await client.get("/api/v1/models")).status_code == 401


async def test_an_orgs_own_key_makes_its_providers_models_available_to_that_org_only(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings, org_name="Brings keys")
    other = await create_account(session, settings, org_name="Does not")
    added = await client.post(
        "/api/v1/provider-keys",
        json={"provider": "deepseek", "api_key": "sk-deepseek-own-1234"},
        headers=owner.headers,
    )
    assert added.status_code == 201, added.text

    def deepseek(body: dict[str, list[dict[str, object]]]) -> set[object]:
        return {m["available"] for m in body["items"] if m["provider"] == "deepseek"}

    mine = await client.get("/api/v1/models", headers=owner.headers)
    theirs = await client.get("/api/v1/models", headers=other.headers)
    assert deepseek(mine.json()) == {True}
    assert deepseek(theirs.json()) == {False}
    google = {m["available"] for m in mine.json()["items"] if m["provider"] == "google"}
    assert google == {False}


async def test_models_can_be_read_with_an_api_key(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_account(session, settings)
    created = await client.post(
        "/api/v1/api-keys", json={"label": "ci", "scopes": ["read"]}, headers=owner.headers
    )
    key = created.json()["key"]
    response = await client.get("/api/v1/models", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert "openai/gpt-4o" in {m["id"] for m in response.json()["items"]}


def test_operator_file_adds_models_and_overrides_prices_and_the_default(
    settings: Settings, tmp_path: Path
) -> None:
    path = write_catalog(
        tmp_path,
        """
default_model = "openai/gpt-4o-mini"

[providers.acme]
kind = "openai"
display_name = "Acme AI"
base_url = "https://llm.acme.example/v1"

[[models]]
id = "acme/house-model"
display_name = "House model"
context_window = 32000
input_usd_per_mtok = 0.5
output_usd_per_mtok = 1.5

[[models]]
id = "openai/gpt-4o"
display_name = "GPT-4o (negotiated)"
context_window = 128000
input_usd_per_mtok = 2.0
output_usd_per_mtok = 8.0
""",
    )
    builtin = load_catalog(settings)
    catalog = load_catalog(with_catalog(settings, path))
    assert catalog.default_model == "openai/gpt-4o-mini"
    house = catalog.models["acme/house-model"]
    assert (house.display_name, house.provider, house.name) == ("House model", "acme", "house-model")
    assert catalog.providers["acme"].base_url == "https://llm.acme.example/v1"
    gpt4o = catalog.models["openai/gpt-4o"]
    assert (gpt4o.display_name, gpt4o.input_usd_per_mtok, gpt4o.output_usd_per_mtok) == (
        "GPT-4o (negotiated)",
        Decimal("2.0"),
        Decimal("8.0"),
    )
    # Everything the operator did not mention is still there, unchanged.
    assert set(builtin.models) | {"acme/house-model"} == set(catalog.models)
    assert catalog.models["openai/gpt-4o-mini"] == builtin.models["openai/gpt-4o-mini"]
    assert builtin.default_model == "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default_model = [", "Cannot read the model catalog"),
        (
            '[[models]]\nid = "nowhere/model-x"\ndisplay_name = "X"\ncontext_window = 10\n'
            "input_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n",
            "model nowhere/model-x names an unknown provider 'nowhere'",
        ),
        ('default_model = "openai/gpt-99"', "default_model 'openai/gpt-99' is not in the catalog"),
        (
            '[[models]]\nid = "openai/cheap"\ndisplay_name = "Cheap"\ncontext_window = 10\n'
            "input_usd_per_mtok = -1\noutput_usd_per_mtok = 1\n",
            "models.0.input_usd_per_mtok",
        ),
        ('[providers.x]\nkind = "carrier-pigeon"\ndisplay_name = "X"\n', "providers.x.kind"),
        ("colour = 'blue'", "colour: Extra inputs are not permitted"),
    ],
    ids=["invalid-toml", "unknown-provider", "unknown-default", "negative-price", "bad-kind", "extra-key"],
)
def test_a_broken_operator_file_stops_start_up_with_one_clear_sentence(
    settings: Settings, tmp_path: Path, text: str, message: str
) -> None:
    path = write_catalog(tmp_path, text)
    with pytest.raises(CatalogError) as raised:
        load_catalog(with_catalog(settings, path))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_operator_file_names_the_setting(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CatalogError) as raised:
        load_catalog(with_catalog(settings, missing))
    assert str(raised.value) == (
        f"The model catalog {missing} does not exist; check HUTCH_MODEL_CATALOG_FILE."
    )


def test_cost_is_in_micro_usd_and_rounded_up() -> None:
    sonnet = model("anthropic/claude-sonnet-4-5", "3", "15")
    assert sonnet.cost_micro_usd(1_000_000, 0) == 3_000_000  # $3
    assert sonnet.cost_micro_usd(0, 1_000_000) == 15_000_000
    assert sonnet.cost_micro_usd(1000, 500) == 3000 + 7500
    assert sonnet.cost_micro_usd(0, 0) == 0
    mini = model("openai/gpt-4o-mini", "0.15", "0.6")
    assert mini.cost_micro_usd(1, 0) == 1  # 0.15 micro-USD is charged as 1
    assert mini.cost_micro_usd(10, 10) == 8  # 1.5 + 6 = 7.5
    assert mini.cost_micro_usd(20, 0) == 3  # exactly 3: no rounding
    assert model("demo/echo", "0", "0").cost_micro_usd(10**9, 10**9) == 0


def test_default_model_is_the_demo_only_when_no_provider_is_configured(settings: Settings) -> None:
    bare = settings.model_copy(update=NO_PROVIDER_KEYS)
    catalog = load_catalog(bare)
    assert LLMGateway(bare, catalog).default_model({}) == DEMO_MODEL
    assert LLMGateway(settings, catalog).default_model({}) == "anthropic/claude-sonnet-4-5"
    # Without the default's provider, the first model that can answer; an org's key counts too.
    only_openai = settings.model_copy(update={"anthropic_api_key": None})
    assert LLMGateway(only_openai, catalog).default_model({}) == "openai/gpt-4o"
    own_deepseek = {"deepseek": Credentials("sk-own", None)}
    assert LLMGateway(bare, catalog).default_model(own_deepseek) == "deepseek/deepseek-chat"


def test_resolve_names_the_missing_key_and_prefers_the_orgs_own(settings: Settings) -> None:
    gateway = LLMGateway(settings, load_catalog(settings))
    with pytest.raises(ModelUnavailable) as raised:
        gateway.resolve("google/gemini-2.0-flash", {})
    assert raised.value.status_code == 409
    assert "No API key is configured for Google" in raised.value.detail
    assert "Gemini 2.0 Flash" in raised.value.detail
    with pytest.raises(ModelUnavailable) as unknown:
        gateway.resolve("openai/gpt-99", {})
    assert "openai/gpt-99" in unknown.value.detail

    platform = gateway.resolve("openai/gpt-4o", {})
    assert platform.byok is False
    assert platform.credentials == Credentials("sk-test-platform-key", settings.openai_base_url)
    own = gateway.resolve("openai/gpt-4o", {"openai": Credentials("sk-org-own", "https://llm.example/v1")})
    assert own.byok is True
    assert own.credentials == Credentials("sk-org-own", "https://llm.example/v1")
    gemini = gateway.resolve("google/gemini-2.0-flash", {"google": Credentials("g-own", None)})
    assert gemini.byok is True
    assert gemini.credentials.base_url == "https://generativelanguage.googleapis.com/v1beta/openai/"


def test_demo_model_answers_without_any_key(settings: Settings) -> None:
    bare = settings.model_copy(update=NO_PROVIDER_KEYS)
    gateway = LLMGateway(bare, load_catalog(bare))
    resolved = gateway.resolve(DEMO_MODEL, {})
    assert resolved.byok is False
    assert gateway.available("demo", {}) is True
    assert gateway.available("openai", {}) is False
