"""Guard.redact and the redact outcome in verdicts, with Presidio and detect-secrets, offline."""

from __future__ import annotations

import json
import socket

import pytest

from guardrail import Action, Guard, load_policy
from guardrail.errors import ConfigError
from guardrail.policy import EntityRules, Policy
from guardrail.testing import FakeClassifier
from tests.redaction.conftest import AWS, CARD

PROMPT = (
    "Hi, I'm writing from jane.doe@example.com, call me on +44 20 7946 0958. "
    f"My card is {CARD} and my server is 10.0.0.12."
)


def test_redact_replaces_pii_with_typed_numbered_placeholders(redact_guard: Guard):
    result = redact_guard.redact(PROMPT)
    assert result.text == (
        "Hi, I'm writing from <EMAIL_1>, call me on <PHONE_1>. "
        "My card is <CREDIT_CARD_1> and my server is <IP_ADDRESS_1>."
    )
    assert [e.type for e in result.entities] == ["EMAIL", "PHONE", "CREDIT_CARD", "IP_ADDRESS"]
    assert all(e.action is Action.REDACT for e in result.entities)
    first = result.entities[0]
    assert PROMPT[first.start : first.end] == "jane.doe@example.com"
    assert result.restore(f"Dear {result.entities[0].placeholder}, ok.") == (
        "Dear jane.doe@example.com, ok."
    )
    assert result.restore(result.text) == PROMPT


def test_verdict_says_redact_with_types_and_spans_never_values(redact_guard: Guard):
    verdict = redact_guard.check_prompt(PROMPT)
    assert verdict.action is Action.REDACT
    assert verdict.redacted and not verdict.blocked
    assert "entity:EMAIL" in verdict.decided_by
    dumped = json.dumps(verdict.model_dump(mode="json"))
    for value in ("jane.doe@example.com", "7946", "4111", "10.0.0.12"):
        assert value not in dumped
    spans = [(e.type, e.start, e.end) for e in verdict.entities]
    assert ("EMAIL", PROMPT.index("jane"), PROMPT.index(".com,") + 4) in spans


def test_secret_in_prompt_blocks_and_outranks_redact(redact_guard: Guard):
    verdict = redact_guard.check_prompt(f"use key {AWS} for jane.doe@example.com")
    assert verdict.action is Action.BLOCK
    assert "entity:AWS_KEY" in verdict.decided_by
    assert {e.type for e in verdict.entities} == {"AWS_KEY", "EMAIL"}
    # guard.redact leaves what the policy blocks in place (the caller blocks the text anyway).
    result = redact_guard.redact(f"use key {AWS} for jane.doe@example.com")
    assert result.text == f"use key {AWS} for <EMAIL_1>"


def test_directions_have_their_own_rules(redact_guard: Guard):
    # Responses: cards block, e-mails are allowed (listed, not acted on).
    verdict = redact_guard.check_response(f"Your card {CARD} is on file; write to a@example.com")
    assert verdict.action is Action.BLOCK
    assert {e.type: e.action for e in verdict.entities} == {
        "CREDIT_CARD": Action.BLOCK,
        "EMAIL": Action.ALLOW,
    }
    # A URL is allowed in prompts by its own rule, over the pii group's redact.
    verdict = redact_guard.check_prompt("see https://example.org/docs please")
    assert verdict.action is Action.ALLOW
    assert [e.type for e in verdict.entities] == ["URL"]


def test_classifier_block_still_wins(redact_guard: Guard):
    verdict = redact_guard.check_prompt("BLOCKME says jane.doe@example.com")
    assert verdict.action is Action.BLOCK
    assert verdict.entities[0].type == "EMAIL"


def test_no_entities_section_means_no_detection_and_a_clear_redact_error(fake_guard: Guard):
    assert not fake_guard.redacts
    assert fake_guard.check_prompt("mail jane.doe@example.com").entities == ()
    with pytest.raises(ConfigError, match="entities"):
        fake_guard.redact("mail jane.doe@example.com")


def test_bad_entity_rules_fail_at_load_time():
    with pytest.raises(ValueError, match="unknown entity type 'EMAILS'"):
        EntityRules.model_validate({"pii": {}, "prompt": {"EMAILS": "redact"}})
    with pytest.raises(ValueError, match="the secrets detector is off"):
        EntityRules.model_validate({"pii": {}, "prompt": {"AWS_KEY": "block"}})
    with pytest.raises(ValueError, match="unknown PII type"):
        EntityRules.model_validate({"pii": {"types": ["EMAIL", "SHOE_SIZE"]}})
    with pytest.raises(ValueError, match="redact"):
        EntityRules.model_validate({"secrets": {}, "prompt": {"secrets": "erase"}})


def test_missing_spacy_model_is_a_clear_error_not_a_download():
    policy = Policy(
        name="ner",
        classifier={"name": "fake"},
        entities={"pii": {"spacy_model": "xx_not_installed_sm"}, "prompt": {"pii": "redact"}},
    )
    guard = Guard(policy, classifier=FakeClassifier())
    with pytest.raises(ConfigError, match="not installed"):
        guard.redact("jane.doe@example.com")


def test_nothing_is_downloaded_or_fetched(monkeypatch: pytest.MonkeyPatch, caplog):
    """Presidio's engine, spaCy and tldextract are built and used with every socket refused."""
    from guardrail.redaction import _pii

    monkeypatch.setattr(_pii, "_engines", {})  # build afresh, inside this test
    _pii._offline_tld.cache_clear()
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))
    policy = Policy(
        name="offline",
        classifier={"name": "fake"},
        entities={"pii": {}, "secrets": {}, "prompt": {"pii": "redact", "secrets": "redact"}},
    )
    guard = Guard(policy, classifier=FakeClassifier())
    with caplog.at_level("DEBUG"):
        result = guard.redact(f"mail ops@mail.example.co.uk, key {AWS}, web https://a.example.com")
    assert result.text == "mail <EMAIL_1>, key <AWS_KEY_1>, web <URL_1>"
    assert attempts == []
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_default_policy_blocks_secrets_only():
    guard = Guard(load_policy("default"), classifier=FakeClassifier())
    verdict = guard.check_prompt(f"my key is {AWS}")
    assert verdict.action is Action.BLOCK
    assert verdict.decided_by[0] == "entity:AWS_KEY"
    assert guard.check_prompt("mail jane.doe@example.com").action is Action.ALLOW


def test_detectors_load_lazily():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from guardrail import Guard, load_policy\n"
        "from guardrail.testing import FakeClassifier\n"
        "g = Guard(load_policy('redact-example'), classifier=FakeClassifier())\n"
        "before = [m for m in ('presidio_analyzer', 'spacy', 'detect_secrets') if m in sys.modules]\n"
        "g.check_prompt('mail a@example.com')\n"
        "after = [m for m in ('presidio_analyzer', 'spacy', 'detect_secrets') if m in sys.modules]\n"
        "print(before, after)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] ['presidio_analyzer', 'spacy', 'detect_secrets']"


def test_cards_beyond_presidios_pattern_are_found_and_luhn_checked(redact_guard: Guard):
    # A 2-series Mastercard and a 19-digit Visa (Luhn-valid); the same digits off by one are not.
    for number in ("2221 0012 3412 3450", "4000 0000 0000 0000 006"):
        found = redact_guard.entities(f"charge {number} please")
        assert [e.type for e in found] == ["CREDIT_CARD"], number
    invalid = redact_guard.entities("charge 2221 0012 3412 3451 please")
    assert "CREDIT_CARD" not in {e.type for e in invalid}
