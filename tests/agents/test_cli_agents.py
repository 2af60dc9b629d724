"""`ax agent list|show` and `ax provider list|test`, run as the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from automatosx.agents.providers.local import BUNDLED_MODEL
from tests.agents.vendor_api import INPUT_TOKENS, OUTPUT_TOKENS, VendorAPI
from tests.conftest import RunAx

BUILTINS = {"backend", "frontend", "security", "quality", "writer", "devops", "data", "product"}
KEY = "sk-cli-test-SECRET-424242"
NO_KEYS = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "OPENAI_BASE_URL": ""}


def write_agent(workdir: Path, name: str, text: str) -> None:
    folder = workdir / ".automatosx" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


def test_agent_list_shows_builtins_and_project_agents(run_ax: RunAx, tmp_path: Path) -> None:
    write_agent(tmp_path, "reviewer", "role: Reviewer\nproviders: [openai, local]\nmodel: m1\n")
    result = run_ax("agent", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    agents = {a["name"]: a for a in json.loads(result.stdout)}
    assert set(agents) >= BUILTINS
    assert agents["reviewer"]["providers"] == ["openai", "local"]
    assert agents["reviewer"]["source"].endswith("reviewer.yaml")
    assert agents["security"]["role"] == "Security engineer"
    table = run_ax("agent", "list")
    assert table.returncode == 0 and "reviewer" in table.stdout and "openai > local" in table.stdout


def test_agent_show_masks_secrets_and_reports_availability(run_ax: RunAx, tmp_path: Path) -> None:
    write_agent(
        tmp_path, "deployer",
        f"provider: openai\napiKeyEnv: DEPLOY_KEY\nenv: {{DEPLOY_TOKEN: {KEY}, MODE: fast}}\n",
    )  # fmt: skip
    result = run_ax("agent", "show", "deployer", "--format", "json", env=NO_KEYS)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["env"] == {"DEPLOY_TOKEN": "***", "MODE": "fast"}
    assert document["apiKeyEnv"] == "DEPLOY_KEY"
    (row,) = document["availability"]
    assert row["provider"] == "openai" and row["available"] is False
    assert "DEPLOY_KEY" in row["reason"]
    table = run_ax("agent", "show", "deployer")
    assert table.returncode == 0 and KEY not in table.stdout and "DEPLOY_KEY" in table.stdout
    run_ax("agent", "show", "nobody").assert_clean_error()


def test_provider_list_reports_availability_and_reasons(run_ax: RunAx) -> None:
    result = run_ax("provider", "list", "--format", "json", env=NO_KEYS)
    assert result.returncode == 0, result.stderr
    providers = {p["name"]: p for p in json.loads(result.stdout)}
    assert set(providers) == {"claude-code", "gemini-cli", "codex", "openai", "anthropic",
                              "local", "command", "python"}  # fmt: skip
    assert providers["local"]["available"] is True  # llama.cpp and the bundled model
    assert providers["openai"]["available"] is False
    assert "OPENAI_API_KEY" in providers["openai"]["reason"]
    assert providers["claude-code"]["defaultOrder"] == 1
    with_key = run_ax("provider", "list", "--format", "json", env={"OPENAI_API_KEY": KEY})
    openai = next(p for p in json.loads(with_key.stdout) if p["name"] == "openai")
    assert openai["available"] is True and KEY not in with_key.stdout


def test_provider_test_makes_one_real_call(run_ax: RunAx, vendor_api: VendorAPI) -> None:
    result = run_ax(
        "provider", "test", "openai", "--base-url", f"{vendor_api.url}/v1",
        "--model", "gpt-4o-mini", "--format", "json", env={"OPENAI_API_KEY": KEY},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["output"] == "hello from loopback"
    assert (report["tokensIn"], report["tokensOut"]) == (INPUT_TOKENS, OUTPUT_TOKENS)
    assert report["costUsd"] > 0
    (request,) = vendor_api.model_calls()
    assert request.body["max_tokens"] == 16


def test_provider_test_failure_is_one_clean_line_without_the_key(
    run_ax: RunAx, vendor_api: VendorAPI
) -> None:
    vendor_api.fail_next(401, f"invalid x-api-key {KEY}")
    result = run_ax(
        "provider", "test", "anthropic", "--base-url", vendor_api.url,
        env={"ANTHROPIC_API_KEY": KEY},
    )  # fmt: skip
    result.assert_clean_error(code=1)
    assert "auth_error" in result.stderr and KEY not in result.stderr + result.stdout


def test_provider_test_unavailable_and_unknown(run_ax: RunAx) -> None:
    unavailable = run_ax("provider", "test", "anthropic", env=NO_KEYS)
    unavailable.assert_clean_error(code=1)
    assert "ANTHROPIC_API_KEY" in unavailable.stderr
    run_ax("provider", "test", "nonsense").assert_clean_error()


def test_provider_test_local_runs_the_bundled_model(run_ax: RunAx) -> None:
    result = run_ax("provider", "test", "local", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["model"] == BUNDLED_MODEL.name
    assert report["tokensOut"] and report["costUsd"] == 0.0
    assert "Traceback" not in result.stderr  # the model is freed cleanly at exit


def test_a_broken_agent_file_breaks_only_that_agent(run_ax: RunAx, tmp_path: Path) -> None:
    write_agent(tmp_path, "good", "provider: command\ncommand: [cat]\n")
    write_agent(tmp_path, "unclosed", "role: [unclosed\n")
    write_agent(tmp_path, "typo", "provider: command\ncomand: [cat]\n")
    listed = run_ax("agent", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    names = {a["name"] for a in json.loads(listed.stdout)}
    assert names >= BUILTINS | {"good"} and not names & {"unclosed", "typo"}
    warnings = listed.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: ") for w in warnings)
    unclosed, typo = sorted(warnings, key=lambda w: "typo.yaml" in w)
    assert "unclosed.yaml: line 2, column 1: invalid YAML" in unclosed
    assert "typo.yaml: comand: unknown field (did you mean 'command'?)" in typo
    table = run_ax("agent", "list")
    assert table.returncode == 0 and "good" in table.stdout and "unclosed.yaml" in table.stderr

    shown = run_ax("agent", "show", "typo")
    shown.assert_clean_error()
    assert "typo.yaml: comand: unknown field" in shown.stderr

    uses_good = tmp_path / "good.yaml"
    uses_good.write_text("name: w\nsteps:\n  - {key: a, agent: good, prompt: hello}\n")
    ran = run_ax("workflow", "run", str(uses_good), "--format", "json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["stepResults"]["a"] == "hello"
    uses_typo = tmp_path / "typo.yaml"
    uses_typo.write_text("name: w2\nsteps:\n  - {key: a, agent: typo, prompt: hello}\n")
    refused = run_ax("workflow", "run", str(uses_typo))
    refused.assert_clean_error()
    assert "agent 'typo' cannot be used" in refused.stderr and "agents/typo.yaml" in refused.stderr


def test_agent_show_prints_yaml(run_ax: RunAx, tmp_path: Path) -> None:
    import yaml

    write_agent(
        tmp_path, "deployer",
        "role: \"Deployer \\e[31mred\"\nprovider: command\ncommand: [cat, -u]\n"
        f"systemPrompt: \"First line.\\nSecond line.\\n\"\nenv: {{DEPLOY_TOKEN: {KEY}}}\n",
    )  # fmt: skip
    shown = run_ax("agent", "show", "deployer")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and KEY not in shown.stdout
    assert "['cat'" not in shown.stdout and "{'" not in shown.stdout  # no Python reprs
    assert "systemPrompt: |\n  First line.\n  Second line.\n" in shown.stdout
    document = yaml.safe_load(shown.stdout)
    as_json = json.loads(run_ax("agent", "show", "deployer", "--format", "json").stdout)
    assert document == {k: v for k, v in as_json.items() if v is not None}
    assert document["role"] == "Deployer \x1b[31mred"  # the text itself, escaped for YAML
    assert document["command"] == ["cat", "-u"] and document["env"] == {"DEPLOY_TOKEN": "***"}
    assert document["availability"] == [
        {"provider": "command", "available": True, "reason": "runs cat"}
    ]
