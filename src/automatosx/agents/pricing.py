"""What a provider call cost, in USD, when the provider does not say so itself.

Prices are USD per million tokens, input and output. The built-in table covers the models
the vendor CLIs and APIs use by default; a project adds or overrides entries in
`.automatosx/prices.yaml`:

    my-finetune: {input: 1.5, output: 6.0}
    gpt-4o: {input: 2.5, output: 10}

A dated model name (`claude-sonnet-4-20250514`) is priced by its longest listed prefix, so
new snapshots of a known family need no new entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRICES_FILE = Path(".automatosx") / "prices.yaml"


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_mtok + tokens_out * self.output_per_mtok) / 1_000_000


BUILTIN_PRICES: dict[str, Price] = {
    # Anthropic
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-haiku-4": Price(1.0, 5.0),
    "claude-3-7-sonnet": Price(3.0, 15.0),
    "claude-3-5-sonnet": Price(3.0, 15.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
    "claude-3-haiku": Price(0.25, 1.25),
    # OpenAI
    "gpt-5": Price(1.25, 10.0),
    "gpt-5-mini": Price(0.25, 2.0),
    "gpt-5-nano": Price(0.05, 0.4),
    "gpt-5-codex": Price(1.25, 10.0),
    "gpt-4.1": Price(2.0, 8.0),
    "gpt-4.1-mini": Price(0.4, 1.6),
    "gpt-4.1-nano": Price(0.1, 0.4),
    "gpt-4o": Price(2.5, 10.0),
    "gpt-4o-mini": Price(0.15, 0.6),
    "o3": Price(2.0, 8.0),
    "o3-mini": Price(1.1, 4.4),
    "o4-mini": Price(1.1, 4.4),
    # Google
    "gemini-2.5-pro": Price(1.25, 10.0),
    "gemini-2.5-flash": Price(0.3, 2.5),
    "gemini-2.5-flash-lite": Price(0.1, 0.4),
    "gemini-2.0-flash": Price(0.1, 0.4),
    # Models that run on this machine cost nothing per token.
    "smollm2": Price(0.0, 0.0),
    "local": Price(0.0, 0.0),
}


class PriceTable:
    """The built-in prices overlaid with a project's `.automatosx/prices.yaml`."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = {name.lower(): price for name, price in prices.items()}

    @classmethod
    def for_workdir(cls, workdir: Path) -> PriceTable:
        prices = dict(BUILTIN_PRICES)
        prices.update(load_price_file(workdir / PRICES_FILE))
        return cls(prices)

    def price(self, model: str | None) -> Price | None:
        """The exact entry, else the longest entry the model name starts with."""
        if not model:
            return None
        name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" -> "gpt-4o"
        if name in self._prices:
            return self._prices[name]
        prefixes = [key for key in self._prices if name.startswith(key)]
        return self._prices[max(prefixes, key=len)] if prefixes else None

    def cost(
        self, model: str | None, tokens_in: int | None, tokens_out: int | None
    ) -> float | None:
        price = self.price(model)
        if price is None or tokens_in is None or tokens_out is None:
            return None
        return price.cost(tokens_in, tokens_out)


def load_price_file(path: Path) -> dict[str, Price]:
    """Read a prices file; a malformed one is a user error naming the bad entry."""
    from automatosx.errors import AxError

    if not path.is_file():
        return {}
    import yaml  # only when there is a prices file: PyYAML costs ~15 ms of start-up

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AxError(f"{path}: cannot read prices: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AxError(f"{path}: expected a mapping of model name to {{input, output}}")
    prices: dict[str, Price] = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
            raise AxError(f"{path}: {model}: expected {{input: USD/Mtok, output: USD/Mtok}}")
        values = (entry["input"], entry["output"])
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values
        ):
            raise AxError(f"{path}: {model}: prices must be non-negative numbers")
        prices[str(model)] = Price(float(values[0]), float(values[1]))
    return prices
