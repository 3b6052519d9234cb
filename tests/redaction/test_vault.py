"""The vault: typed numbered placeholders, exact restore, streamed restore across chunk splits."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.redaction import StreamRestorer, Vault, map_texts, restore_payload
from guardrail.types import Action, Entity


def _entity(kind: str, start: int, end: int, action: Action = Action.REDACT) -> Entity:
    return Entity(type=kind, start=start, end=end, score=1.0, detector="pii", action=action)


TEXT = "Write to ann@example.com and bob@example.org, or ann@example.com again."


def _found(text: str) -> list[Entity]:
    out = []
    for value in ("ann@example.com", "bob@example.org"):
        start = text.find(value)
        while start >= 0:
            out.append(_entity("EMAIL", start, start + len(value)))
            start = text.find(value, start + 1)
    return sorted(out, key=lambda e: e.start)


def test_placeholders_are_typed_numbered_and_stable_within_a_vault():
    vault = Vault()
    redacted, entities = vault.redact(TEXT, _found(TEXT))
    assert redacted == "Write to <EMAIL_1> and <EMAIL_2>, or <EMAIL_1> again."
    assert [e.placeholder for e in entities] == ["<EMAIL_1>", "<EMAIL_2>", "<EMAIL_1>"]
    assert vault.restore(redacted) == TEXT
    # A second text of the same request continues the numbering and reuses known values.
    again, _ = vault.redact("cc bob@example.org", [_entity("EMAIL", 3, 18)])
    assert again == "cc <EMAIL_2>"
    assert vault.placeholder("AWS_KEY", "AKIA...") == "<AWS_KEY_1>"


def test_only_redact_actions_are_replaced():
    text = "key AKIAIOSFODNN7EXAMPLE mail ann@example.com"
    found = [_entity("AWS_KEY", 4, 24, Action.BLOCK), _entity("EMAIL", 30, 45)]
    redacted, entities = Vault().redact(text, found)
    assert redacted == "key AKIAIOSFODNN7EXAMPLE mail <EMAIL_1>"
    assert entities[0].placeholder is None
    assert entities[1].placeholder == "<EMAIL_1>"


def test_vault_never_shows_its_values():
    vault = Vault()
    vault.redact(TEXT, _found(TEXT))
    assert "example" not in repr(vault)
    assert "example" not in str(vault)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(vault)
    with pytest.raises(TypeError, match="cannot be pickled"):
        copy.deepcopy(vault)


def test_unknown_placeholders_stay_as_they_are():
    vault = Vault()
    vault.placeholder("EMAIL", "a@b.co")
    assert vault.restore("<EMAIL_1> <EMAIL_9> <PERSON_1>") == "a@b.co <EMAIL_9> <PERSON_1>"


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(text[last:p])
        last = p
    pieces.append(text[last:])
    return pieces


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_streamed_restore_is_exact_however_the_answer_is_split(cuts):
    vault = Vault()
    redacted, _ = vault.redact(TEXT, _found(TEXT))
    answer = f"Sure: {redacted} <b>bold</b> a<b and <EMAIL_"
    restorer = StreamRestorer(vault)
    out = "".join(restorer.feed(piece) for piece in _split(answer, cuts)) + restorer.flush()
    assert out == vault.restore(answer)
    assert "ann@example.com" in out
    assert "<EMAIL_1>" not in out


def test_restorer_holds_a_split_placeholder_until_it_is_whole():
    vault = Vault()
    vault.placeholder("EMAIL", "ann@example.com")
    restorer = vault.restorer()
    assert restorer.feed("Mail <EM") == "Mail "
    assert restorer.held == "<EM"
    assert restorer.feed("AIL_1") == ""
    assert restorer.feed("> now") == "ann@example.com now"
    assert restorer.flush() == ""


def test_payload_walk_touches_model_text_only():
    payload = {
        "model": "AKIA",
        "messages": [
            {"role": "user", "content": "hi X"},
            {"role": "user", "content": [{"type": "text", "text": "X there"}]},
            {
                "role": "assistant",
                "tool_calls": [{"id": "X1", "function": {"name": "X", "arguments": "{X}"}}],
            },
        ],
    }
    out = map_texts(payload, lambda s: s.replace("X", "<P_1>"))
    assert out["messages"][0]["content"] == "hi <P_1>"
    assert out["messages"][1]["content"][0]["text"] == "<P_1> there"
    call = out["messages"][2]["tool_calls"][0]
    assert call["id"] == "X1" and call["function"]["name"] == "X"
    assert call["function"]["arguments"] == "{<P_1>}"
    assert payload["messages"][0]["content"] == "hi X"  # the input is not changed
    back = restore_payload(out, lambda s: s.replace("<P_1>", "X"))
    assert back == payload
