"""Patterns and gazetteers for financial entities: the cold start before any model exists.

:class:`PatternExtractor` finds three types, each match scored by how often that kind of
match is right (a prior, not a learned probability):

``FOREX``
    ISO 4217 currency pairs in their common spellings: ``USDJPY``, ``USD/JPY``, ``usd-jpy``,
    ``EUR_USD``, and cashtags of pairs (``$EURUSD``). Both halves must be known codes and
    differ. Separated pairs may use any code in :data:`ISO_4217`; run-together pairs (six
    letters, which ordinary words can spell) only the traded codes in :data:`TRADED`.
``CRYPTO``
    Coin names (``Bitcoin``, case-insensitive), upper-case symbols (``BTC``), cashtags of
    symbols (``$ETH``). A lower-case symbol (``eth``) is too ambiguous to tag and comes back
    as a near miss.
``STOCK``
    Cashtags (``$AAPL``, ``$BRK.B``); the span includes the ``$``.

Each match says whether a gazetteer backs it (``source``): every pair and coin does, and a
cashtag of a ticker in :attr:`Gazetteers.stocks`; any other cashtag is a regex-only match.

Overlapping matches are resolved by score, then by length. The gazetteers are part of the
task config: pass your own to :class:`PatternExtractor`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loop.entities.base import (
    GAZETTEER,
    PATTERN,
    Example,
    ExtractorConfig,
    Span,
    ensure_empty_folder,
    keep_apart,
)
from loop.errors import ModelError

META_FILE = "patterns.json"


def _codes(words: str) -> frozenset[str]:
    """Currency codes from a space-separated string."""
    return frozenset(words.split())


TRADED = _codes(
    "USD EUR JPY GBP CHF AUD NZD CAD CNY CNH HKD SGD SEK NOK DKK PLN CZK HUF TRY ZAR MXN BRL "
    "INR KRW TWD THB IDR MYR RUB ILS SAR AED XAU XAG"
)
"""Currencies commonly quoted as run-together pairs (USDJPY), plus gold and silver."""

ISO_4217 = TRADED | _codes(
    "AFN ALL AMD ANG AOA ARS AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BSD BTN BWP BYN BZD "
    "CDF CLP COP CRC CUP CVE DJF DOP DZD EGP ERN ETB FJD FKP GEL GHS GIP GMD GNF GTQ GYD HNL "
    "HTG IQD IRR ISK JMD JOD KES KGS KHR KMF KPW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL "
    "MGA MKD MMK MNT MOP MRU MUR MVR MWK MZN NAD NGN NIO NPR OMR PAB PEN PGK PHP PKR PYG QAR "
    "RON RSD RWF SBD SCR SDG SHP SLE SOS SRD SSP STN SVC SYP SZL TJS TMT TND TOP TTD TZS UAH "
    "UGX UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZMW ZWL"
)
"""ISO 4217 alphabetic codes of current currencies."""

CRYPTO_ASSETS: Mapping[str, str] = {
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "USDT": "Tether",
    "USDC": "USD Coin",
    "BNB": "BNB",
    "XRP": "Ripple",
    "SOL": "Solana",
    "ADA": "Cardano",
    "DOGE": "Dogecoin",
    "TRX": "Tron",
    "DOT": "Polkadot",
    "LTC": "Litecoin",
    "AVAX": "Avalanche",
    "LINK": "Chainlink",
    "XLM": "Stellar",
    "XMR": "Monero",
    "BCH": "Bitcoin Cash",
    "SHIB": "Shiba Inu",
    "MATIC": "Polygon",
    "ATOM": "Cosmos",
}
"""Coin symbols and names. Names that are also common words (Avalanche, Polygon, Cosmos,
Stellar, BNB) are matched only as symbols."""

AMBIGUOUS_NAMES = frozenset({"Avalanche", "Polygon", "Cosmos", "Stellar", "BNB", "USD Coin"})

SCORES: Mapping[str, float] = {
    "cashtag": 0.95,
    "pair_separated": 0.95,
    "pair_joined_upper": 0.9,
    "pair_joined_lower": 0.7,
    "crypto_symbol": 0.85,
    "crypto_name": 0.9,
    "crypto_symbol_lower": 0.3,
}
"""Prior confidence of each kind of match."""

_SEPARATED = re.compile(r"(?<![\w$])([A-Za-z]{3})\s?[/\-_]\s?([A-Za-z]{3})(?![\w/])")
_JOINED = re.compile(r"(?<![\w$])([A-Za-z]{3})([A-Za-z]{3})(?!\w)")
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z]{1,6}(?:\.[A-Za-z]{1,2})?)(?![\w$])")


@dataclass(frozen=True)
class Gazetteers:
    """What the pattern extractor knows; part of a task's config."""

    traded: frozenset[str] = TRADED
    currencies: frozenset[str] = ISO_4217
    crypto: Mapping[str, str] = field(default_factory=lambda: dict(CRYPTO_ASSETS))
    stocks: frozenset[str] = frozenset()
    """Tickers the task knows (upper case, no ``$``: ``AAPL``, ``BRK.B``). A cashtag of one is
    a gazetteer match, which a model's span cannot override once served; every other cashtag
    is still tagged ``STOCK``, as a regex-only match. None by default."""

    def to_dict(self) -> dict[str, object]:
        return {
            "traded": sorted(self.traded),
            "currencies": sorted(self.currencies),
            "crypto": dict(self.crypto),
            "stocks": sorted(self.stocks),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Gazetteers:
        def codes(key: str, default: frozenset[str]) -> frozenset[str]:
            value = data.get(key)
            return frozenset(str(v).upper() for v in value) if isinstance(value, list) else default

        crypto = data.get("crypto")
        return cls(
            traded=codes("traded", TRADED),
            currencies=codes("currencies", ISO_4217),
            crypto=dict(crypto) if isinstance(crypto, dict) else dict(CRYPTO_ASSETS),
            stocks=codes("stocks", frozenset()),
        )


class PatternExtractor:
    """Regular expressions and gazetteers behind the :class:`EntityExtractor` contract."""

    def __init__(self, gazetteers: Gazetteers | None = None, threshold: float = 0.5) -> None:
        self.gazetteers = gazetteers or Gazetteers()
        self.threshold = threshold
        names = [n for n in self.gazetteers.crypto.values() if n not in AMBIGUOUS_NAMES]
        names.sort(key=len, reverse=True)
        self._names = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(n) for n in names) + r")(?!\w)", re.I)
            if names
            else None
        )
        symbols = sorted(self.gazetteers.crypto, key=len, reverse=True)
        self._symbols = re.compile(
            r"(?<![\w$])(" + "|".join(re.escape(s) for s in symbols) + r")(?![\w$])", re.I
        )

    @property
    def types(self) -> list[str]:
        return ["CRYPTO", "FOREX", "STOCK"]

    def matches(self, text: str) -> list[Span]:
        """Every match in ``text``, overlaps resolved, sorted by offset."""
        return keep_apart(self._candidates(text))

    def _candidates(self, text: str) -> Iterable[Span]:
        gaz = self.gazetteers
        for m in _SEPARATED.finditer(text):
            if _is_pair(m.group(1), m.group(2), gaz.currencies):
                yield _span(m, "FOREX", SCORES["pair_separated"])
        for m in _JOINED.finditer(text):
            if _is_pair(m.group(1), m.group(2), gaz.traded):
                upper = m.group(0).isupper()
                kind = "pair_joined_upper" if upper else "pair_joined_lower"
                yield _span(m, "FOREX", SCORES[kind])
        for m in _CASHTAG.finditer(text):
            symbol = m.group(1).upper()
            source = GAZETTEER
            if len(symbol) == 6 and _is_pair(symbol[:3], symbol[3:], gaz.traded):
                label = "FOREX"
            elif symbol in gaz.crypto:
                label = "CRYPTO"
            else:
                label, source = "STOCK", GAZETTEER if symbol in gaz.stocks else PATTERN
            yield _span(m, label, SCORES["cashtag"], source)
        for m in self._symbols.finditer(text):
            upper = m.group(0).isupper()
            kind = "crypto_symbol" if upper else "crypto_symbol_lower"
            if upper or m.group(0).islower():
                yield _span(m, "CRYPTO", SCORES[kind])
        if self._names is not None:
            for m in self._names.finditer(text):
                yield _span(m, "CRYPTO", SCORES["crypto_name"])

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        return [[s for s in self.matches(t) if s.score >= self.threshold] for t in texts]

    def analyse(
        self, texts: Sequence[str], batch_size: int = 32
    ) -> list[tuple[list[Span], list[Span]]]:
        """Matches at or above the threshold, and those below it, of each text."""
        split = []
        for text in texts:
            found = self.matches(text)
            split.append(
                (
                    [s for s in found if s.score >= self.threshold],
                    [s for s in found if s.score < self.threshold],
                )
            )
        return split

    def near_misses(self, texts: Sequence[str], batch_size: int = 32) -> list[list[Span]]:
        return [[s for s in self.matches(t) if s.score < self.threshold] for t in texts]

    def save(self, path: Path) -> None:
        ensure_empty_folder(path)
        path.mkdir(parents=True, exist_ok=True)
        payload = {"gazetteers": self.gazetteers.to_dict(), "threshold": self.threshold}
        (path / META_FILE).write_text(json.dumps(payload, indent=2))


class PatternFactory:
    """Builds the pattern extractor; "training" ignores examples (nothing is learned)."""

    name = "patterns"

    def train(self, examples: Sequence[Example], config: ExtractorConfig) -> PatternExtractor:
        return PatternExtractor(threshold=config.threshold)

    def load(self, path: Path) -> PatternExtractor:
        try:
            payload = json.loads((path / META_FILE).read_text())
            return PatternExtractor(
                Gazetteers.from_dict(payload["gazetteers"]), float(payload["threshold"])
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot load patterns from {path}: {exc}") from exc


def _is_pair(base: str, quote: str, codes: frozenset[str]) -> bool:
    """Both halves are known codes, different, and each written in one case."""
    same_case = all(part.isupper() or part.islower() for part in (base, quote))
    base, quote = base.upper(), quote.upper()
    return same_case and base != quote and base in codes and quote in codes


def _span(match: re.Match[str], label: str, score: float, source: str = GAZETTEER) -> Span:
    return Span(match.start(), match.end(), label, match.group(0), score, source)
