"""The entity types the redaction detectors know, by detector (no detector is imported here).

Policies name these types (or the groups ``pii``, ``secrets``) to say what to do with each; the
names become the placeholders' prefixes (``<EMAIL_1>``, ``<AWS_KEY_1>``).
"""

from __future__ import annotations

__all__ = ["ENTITY_GROUPS", "NER_TYPES", "PII_TYPES", "SECRET_TYPES", "detector_of"]

#: Found by Presidio's pattern recognizers (no model needed); language-free formats first.
PII_TYPES: tuple[str, ...] = (
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "IP_ADDRESS",
    "URL",
    "CRYPTO",
    "MAC_ADDRESS",
    "US_SSN",
    "US_ITIN",
    "US_PASSPORT",
    "UK_NHS",
    "UK_NINO",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "PL_PESEL",
    "FI_PERSONAL_IDENTITY_CODE",
    "IN_PAN",
    "IN_AADHAAR",
    "AU_TFN",
    "SG_NRIC_FIN",
    "KR_RRN",
)

#: Found only when a spaCy NER model is configured (``entities.pii.spacy_model``).
NER_TYPES: tuple[str, ...] = ("PERSON", "LOCATION", "NRP", "DATE_TIME")

#: Found by detect-secrets plugins (and one pattern of ours for current OpenAI-style keys).
SECRET_TYPES: tuple[str, ...] = (
    "AWS_KEY",
    "GITHUB_TOKEN",
    "GITLAB_TOKEN",
    "SLACK_TOKEN",
    "STRIPE_KEY",
    "OPENAI_KEY",
    "PRIVATE_KEY",
    "JWT",
    "BASIC_AUTH",
    "HIGH_ENTROPY",
)

#: Group names a policy may use instead of listing types.
ENTITY_GROUPS: dict[str, tuple[str, ...]] = {
    "pii": PII_TYPES + NER_TYPES,
    "secrets": SECRET_TYPES,
}


def detector_of(entity_type: str) -> str | None:
    """``pii`` or ``secrets`` for a known type or group name, None for an unknown one."""
    if entity_type in ENTITY_GROUPS:
        return entity_type
    for group, types in ENTITY_GROUPS.items():
        if entity_type in types:
            return group
    return None
