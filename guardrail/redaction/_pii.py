"""PII through Microsoft Presidio's pattern recognizers, offline.

``AnalyzerEngine()`` with no arguments loads (and, when missing, downloads) a spaCy model, and
Presidio's e-mail recognizer asks ``tldextract`` for the public-suffix list, which it fetches
from the network at first use. Here the engine gets a blank spaCy pipeline (or a model the
policy names, only if installed) and an explicit registry of pattern recognizers, and e-mail
domains are checked against tldextract's bundled snapshot: nothing is downloaded or fetched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

from guardrail._entity_types import NER_TYPES
from guardrail.errors import ConfigError, install_hint
from guardrail.policy import PiiSettings

__all__ = ["PiiDetector", "RawEntity"]

RawEntity = tuple[str, int, int, float]  # type, start, end, score

# Presidio recognizer class name -> our type name (the placeholder's prefix).
_RECOGNIZERS: dict[str, str] = {
    "EmailRecognizer": "EMAIL",
    "PhoneRecognizer": "PHONE",
    "CreditCardRecognizer": "CREDIT_CARD",
    "IbanRecognizer": "IBAN",
    "IpRecognizer": "IP_ADDRESS",
    "UrlRecognizer": "URL",
    "CryptoRecognizer": "CRYPTO",
    "MacAddressRecognizer": "MAC_ADDRESS",
    "UsSsnRecognizer": "US_SSN",
    "UsItinRecognizer": "US_ITIN",
    "UsPassportRecognizer": "US_PASSPORT",
    "NhsRecognizer": "UK_NHS",
    "UkNinoRecognizer": "UK_NINO",
    "EsNifRecognizer": "ES_NIF",
    "EsNieRecognizer": "ES_NIE",
    "ItFiscalCodeRecognizer": "IT_FISCAL_CODE",
    "PlPeselRecognizer": "PL_PESEL",
    "FiPersonalIdentityCodeRecognizer": "FI_PERSONAL_IDENTITY_CODE",
    "InPanRecognizer": "IN_PAN",
    "InAadhaarRecognizer": "IN_AADHAAR",
    "AuTfnRecognizer": "AU_TFN",
    "SgFinRecognizer": "SG_NRIC_FIN",
    "KrRrnRecognizer": "KR_RRN",
}
_NER = {"PERSON": "PERSON", "LOCATION": "LOCATION", "NRP": "NRP", "DATE_TIME": "DATE_TIME"}

_MORE_CARDS = (
    r"\b(?:2[2-7]\d{2}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}"
    r"|(?:4\d|5[0-8]|6\d)\d{2}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}[- ]?\d{2,3})\b"
)
_URL_TRAILING = ".,;:!?)]}'\"»”’"
_build_lock = threading.Lock()
# Built engines by settings: guards with the same PII settings share one (Presidio and spaCy
# take seconds to set up; the engine is read-only once built).
_engines: dict[str, tuple[Any, dict[str, str]]] = {}


def _import() -> Any:
    try:
        import presidio_analyzer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"PII detection (entities.pii) needs Presidio: {install_hint('pii')}"
        ) from e
    return presidio_analyzer


@cache
def _offline_tld() -> Any:
    """A tldextract that uses its bundled public-suffix snapshot and never fetches."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def _nlp(settings: PiiSettings) -> Any:
    import spacy

    if settings.spacy_model is None:
        return spacy.blank(settings.language)
    if not spacy.util.is_package(settings.spacy_model):
        raise ConfigError(
            f"entities.pii.spacy_model: spaCy model {settings.spacy_model!r} is not installed; "
            f"install it first (python -m spacy download {settings.spacy_model}, or pip install "
            "its wheel), or remove spacy_model to use the pattern recognizers only"
        )
    return spacy.load(settings.spacy_model)


def _engine(settings: PiiSettings) -> tuple[Any, dict[str, str]]:
    presidio = _import()
    from presidio_analyzer import predefined_recognizers as pr
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    lang = settings.language
    nlp = _nlp(settings)

    class _GivenSpacy(SpacyNlpEngine):
        """A spaCy engine over a pipeline built here (its ``load`` would download a model)."""

        def load(self) -> None:
            self.nlp = {lang: nlp}  # type: ignore[assignment]

    class _OfflineEmail(pr.EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(_offline_tld()(pattern_text).fqdn)

    nlp_engine = _GivenSpacy(models=[{"lang_code": lang, "model_name": "given"}])
    nlp_engine.load()
    registry = presidio.RecognizerRegistry(supported_languages=[lang])
    wanted = set(settings.types) if settings.types is not None else None
    names: dict[str, str] = {}
    for cls_name, ours in _RECOGNIZERS.items():
        if wanted is not None and ours not in wanted:
            continue
        recognizer: Any
        if cls_name == "EmailRecognizer":
            recognizer = _OfflineEmail(supported_language=lang)
        elif cls_name == "CreditCardRecognizer":
            # Presidio's card pattern stops at 17 digits and misses 2-series Mastercards;
            # these are Luhn-checked like the rest.
            extra = presidio.Pattern("2-series and 18-19 digit cards (weak)", _MORE_CARDS, 0.3)
            patterns = [*pr.CreditCardRecognizer.PATTERNS, extra]
            recognizer = pr.CreditCardRecognizer(supported_language=lang, patterns=patterns)
        elif cls_name == "PhoneRecognizer":
            recognizer = pr.PhoneRecognizer(
                supported_language=lang, supported_regions=settings.phone_regions
            )
        else:
            recognizer = getattr(pr, cls_name)(supported_language=lang)
        registry.add_recognizer(recognizer)
        for entity in recognizer.supported_entities:
            names[entity] = ours
    ner = [t for t in NER_TYPES if wanted is None or t in wanted]
    if settings.spacy_model is not None and ner:
        registry.add_recognizer(pr.SpacyRecognizer(supported_language=lang))
        names.update({k: v for k, v in _NER.items() if v in ner})
    engine = presidio.AnalyzerEngine(
        nlp_engine=nlp_engine, registry=registry, supported_languages=[lang]
    )
    return engine, names


class PiiDetector:
    """Presidio's recognizers for one ``PiiSettings``; the engine is built on first use."""

    def __init__(self, settings: PiiSettings) -> None:
        self.settings = settings
        self._engine: tuple[Any, dict[str, str]] | None = None

    def _built(self) -> tuple[Any, dict[str, str]]:
        if self._engine is None:
            with _build_lock:
                key = self.settings.model_dump_json()
                if self._engine is None and key in _engines:
                    self._engine = _engines[key]
                if self._engine is None:
                    # Presidio logs each recognizer it adds at INFO and warns about languages
                    # it has no context words for; neither says anything useful here.
                    logger = logging.getLogger("presidio-analyzer")
                    level = logger.level
                    logger.setLevel(logging.ERROR)
                    try:
                        self._engine = _engines[key] = _engine(self.settings)
                    finally:
                        logger.setLevel(level)
        return self._engine

    def warm_up(self) -> None:
        """Build the engine now (imports Presidio and spaCy)."""
        self._built()

    def detect(self, text: str) -> Sequence[RawEntity]:
        """PII spans in ``text``: (type, start, end, score)."""
        engine, names = self._built()
        results = engine.analyze(
            text=text,
            language=self.settings.language,
            entities=list(names),
            score_threshold=self.settings.min_score,
        )
        out: list[RawEntity] = []
        for r in results:
            ours, start, end = names[r.entity_type], r.start, r.end
            if ours == "URL":
                # Presidio's URL pattern takes a sentence's closing punctuation with it.
                while end > start and text[end - 1] in _URL_TRAILING:
                    end -= 1
            out.append((ours, start, end, float(r.score)))
        return out
