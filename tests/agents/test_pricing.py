"""The price table: longest-prefix model matching and the project's prices.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from automatosx.agents.pricing import PriceTable
from automatosx.errors import AxError
from automatosx.secrets import redact, secret_values


def prices_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / ".automatosx").mkdir(exist_ok=True)
    (tmp_path / ".automatosx" / "prices.yaml").write_text(text)
    return tmp_path


def test_dated_and_prefixed_model_names_match_their_family(tmp_path: Path) -> None:
    table = PriceTable.for_workdir(tmp_path)
    assert table.cost("claude-sonnet-4-20250514", 1_000_000, 0) == pytest.approx(3.0)
    assert table.cost("gpt-4o-mini-2024-07-18", 0, 1_000_000) == pytest.approx(0.6)
    assert table.cost("gpt-4o-2024-08-06", 0, 1_000_000) == pytest.approx(10.0)
    assert table.cost("openai/GPT-4o", 1_000_000, 0) == pytest.approx(2.5)
    assert table.cost("mystery-model", 10, 10) is None
    assert table.cost("gpt-4o", None, 10) is None


def test_project_prices_add_and_override(tmp_path: Path) -> None:
    prices_file(tmp_path, "my-finetune: {input: 1.5, output: 6}\ngpt-4o: {input: 0, output: 0}\n")
    table = PriceTable.for_workdir(tmp_path)
    assert table.cost("my-finetune-v2", 1_000_000, 1_000_000) == pytest.approx(7.5)
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "- a list\n",
        "m: {input: 1}\n",
        "m: {input: -1, output: 1}\n",
        "m: {input: true, output: 1}\n",
        "m: [\n",
    ],
)
def test_bad_prices_file_is_a_user_error_naming_it(tmp_path: Path, text: str) -> None:
    prices_file(tmp_path, text)
    with pytest.raises(AxError, match=r"prices\.yaml"):
        PriceTable.for_workdir(tmp_path)


def test_secret_values_are_masked() -> None:
    env = {"OPENAI_API_KEY": "sk-abc12345", "GH_TOKEN": "ghp_999999", "HOME": "/root", "X_KEY": "1"}
    secrets = secret_values(env)
    assert set(secrets) == {"sk-abc12345", "ghp_999999"}  # too-short values are not masked
    assert redact("key sk-abc12345 and ghp_999999 in /root", secrets) == "key *** and *** in /root"
