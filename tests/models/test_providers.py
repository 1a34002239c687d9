"""Provider configuration: presets, parley.toml, keys, retries and the error mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley import (
    AuthenticationError,
    Client,
    ClientConfig,
    ConfigError,
    ProviderRequestError,
    ProviderUnavailableError,
    RateLimitError,
    UnknownModelError,
)
from parley.config import ProviderConfig, RetryPolicy
from parley.models.faults import from_status, retry_after_seconds, safe_url
from parley.models.pricing import price
from parley.models.providers import (
    PRESETS,
    build_adapter,
    load_config_files,
    resolve_base_url,
    resolve_key,
)
from parley.models.registry import ModelRegistry


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_presets_cover_the_common_endpoints() -> None:
    assert {"openai", "anthropic", "azure", "ollama", "vllm", "lmstudio", "openrouter"} <= set(
        PRESETS
    )
    assert PRESETS["ollama"].base_url == "http://localhost:11434/v1"
    assert not PRESETS["ollama"].key_required
    assert PRESETS["anthropic"].type == "anthropic"
    assert PRESETS["azure"].type == "azure"


def test_keys_come_from_the_config_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ProviderConfig(api_key_env="MY_KEY")
    with pytest.raises(ConfigError, match="set MY_KEY"):
        resolve_key("mine", config)
    monkeypatch.setenv("MY_KEY", "from-env")
    assert resolve_key("mine", config) == "from-env"
    assert resolve_key("mine", ProviderConfig(api_key="given", api_key_env="MY_KEY")) == "given"
    assert resolve_key("local", ProviderConfig(key_required=False)) is None


def test_the_key_never_shows_in_a_repr_or_the_public_form() -> None:
    config = ProviderConfig(api_key="sk-very-secret", base_url="http://x")
    assert "sk-very-secret" not in repr(config)
    assert "api_key" not in config.public()
    assert ProviderConfig.from_public(config.public()).api_key is None


def test_provider_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="provider type"):
        ProviderConfig(type="gemini")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout"):
        ProviderConfig(timeout=0)
    with pytest.raises(ConfigError, match="unknown provider setting"):
        ProviderConfig.from_public({"type": "openai", "colour": "blue"})


def test_parley_toml_sets_default_model_aliases_and_providers(tmp_path: Path) -> None:
    user = write(
        tmp_path / "user.toml",
        'default_model = "echo:user"\n[aliases]\nfast = "echo:fast"\n',
    )
    project = write(
        tmp_path / "project.toml",
        'default_model = "echo:project"\n'
        "[providers.ollama]\n"
        'base_url = "http://gpu-box:11434/v1"\n'
        "[providers.corp]\n"
        'type = "openai"\n'
        'base_url = "https://llm.corp.example/v1"\n'
        'api_key_env = "CORP_KEY"\n'
        'headers = { "X-Team" = "search" }\n',
    )
    merged = load_config_files([user, project])
    assert merged.default_model == "echo:project"
    assert merged.aliases == {"fast": "echo:fast"}
    assert merged.providers["ollama"].base_url == "http://gpu-box:11434/v1"
    assert not merged.providers["ollama"].key_required  # the rest of the preset is kept
    assert merged.providers["corp"].headers == {"X-Team": "search"}
    assert merged.sources == (user, project)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default_model = ", "not valid TOML"),
        ('colour = "blue"\n', "unknown key"),
        ('[providers.x]\napi_key = "sk-1"\n', "api_key_env"),
        ('[providers.x]\nbase_urll = "http://x"\n', "base_urll"),
        ('[providers.x]\ntype = "gemini"\n', "provider type"),
    ],
)
def test_a_broken_parley_toml_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "parley.toml", text)
    with pytest.raises(ConfigError, match=message):
        load_config_files([path])


async def test_the_client_reads_parley_toml_from_the_project_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "parley.toml", 'default_model = "echo:from-toml"\n[aliases]\nq = "echo:q"\n')
    monkeypatch.chdir(tmp_path)
    async with Client(store="memory://") as client:
        assert (await client.create_session()).model == "echo:from-toml"
        reply = await (await client.create_session(model="q")).send_and_wait("hi")
        assert "echo:q" in reply.text
    async with Client(store="memory://", config=ClientConfig(config_files=False)) as client:
        assert (await client.create_session()).model == "echo"


async def test_parley_config_names_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "elsewhere.toml", 'default_model = "echo:named"\n')
    monkeypatch.setenv("PARLEY_CONFIG", str(path))
    async with Client(store="memory://") as client:
        assert (await client.create_session()).model == "echo:named"
    monkeypatch.setenv("PARLEY_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        Client(store="memory://")


def test_azure_needs_its_endpoint() -> None:
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        build_adapter("azure", ProviderConfig(type="azure", api_key="k"))


def test_retry_policy_backs_off_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=4, initial_delay=0.5, multiplier=2, max_delay=3, jitter=0)
    assert [policy.delay(n, None) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, None]
    assert policy.delay(1, 2.5) == 2.5
    assert policy.delay(1, 0.0) == 0.0
    assert policy.delay(1, 10.0) is None  # longer than max_delay: give up at once
    jittery = RetryPolicy(initial_delay=1.0, jitter=0.5)
    delays = {jittery.delay(1, None) for _ in range(50)}
    assert all(d is not None and 0.5 <= d <= 1.0 for d in delays)
    assert len(delays) > 1  # not in lockstep
    assert jittery.delay(1, 2.0) == 2.0  # the provider's own hint is taken as it is
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(jitter=2)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_is_read_in_every_form(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers) == seconds


def test_status_codes_map_onto_the_error_tree() -> None:
    assert isinstance(from_status("p", 401, "bad key", {}), AuthenticationError)
    limited = from_status("p", 429, "slow", {"retry-after": "3"})
    assert isinstance(limited, RateLimitError)
    assert limited.retry_after == 3.0
    assert limited.retryable
    for status in (500, 502, 503, 529):
        error = from_status("p", status, "down", {"retry-after": "4"})
        assert isinstance(error, ProviderUnavailableError)
        assert error.retryable
        assert error.retry_after == 4.0
    refused = from_status("p", 404, "no such model", {})
    assert isinstance(refused, ProviderRequestError)
    assert not refused.retryable
    assert "check the model name" in str(refused)


def test_a_url_set_in_parley_toml_beats_the_presets_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-env/v1")
    path = write(tmp_path / "parley.toml", '[providers.openai]\nbase_url = "http://proxy/v1"\n')
    config = load_config_files([path]).providers["openai"]
    assert resolve_base_url(config) == "http://proxy/v1"
    assert resolve_base_url(PRESETS["openai"]) == "http://from-env/v1"


def test_headers_are_never_stored_or_shown() -> None:
    config = ProviderConfig(headers={"Helicone-Auth": "Bearer sk-helicone"})
    assert "sk-helicone" not in repr(config)
    assert "headers" not in config.public()


def test_settings_the_sdk_refuses_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cannot be set up"):
        build_adapter("bad", ProviderConfig(base_url="http://[::1", api_key="k"))


def test_urls_in_messages_lose_credentials_and_queries() -> None:
    assert safe_url("http://user:sk-1@host:8080/v1/?key=sk-2") == "http://host:8080/v1/"


def test_cache_writes_are_priced_above_plain_input() -> None:
    base = price("anthropic", "claude-sonnet-4-6", input_tokens=10_500, output_tokens=100)
    written = price(
        "anthropic",
        "claude-sonnet-4-6",
        input_tokens=10_500,
        output_tokens=100,
        cache_write_tokens=10_000,
    )
    assert base is not None
    assert written is not None
    assert written > base
    local = price("openai", "gpt-4o", input_tokens=10, output_tokens=10, api_url="http://x/v1")
    assert local is None  # an unknown endpoint is not priced as OpenAI


def test_a_bare_provider_name_is_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(providers=dict(PRESETS))
    with pytest.raises(UnknownModelError):
        registry.resolve("ollama")
    assert registry.resolve("ollama:llama3.2").name == "llama3.2"
    with pytest.raises(UnknownModelError):  # and still not once the adapter exists
        registry.resolve("ollama")


def test_provider_settings_are_typed(tmp_path: Path) -> None:
    path = write(tmp_path / "parley.toml", '[providers.local]\nkey_required = "no"\n')
    with pytest.raises(ConfigError, match=r"parley\.toml.*key_required"):
        load_config_files([path])
    with pytest.raises(ConfigError, match="max_tokens"):
        ProviderConfig(max_tokens=0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"headers": "x"}, "headers must be a mapping"),
        ({"headers": {"X": 1}}, "headers must map"),
        ({"api_key_env": 5}, "api_key_env must be a string"),
        ({"base_url": 8080}, "base_url must be a string"),
    ],
)
def test_provider_fields_are_checked(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProviderConfig(**settings)  # type: ignore[arg-type]
