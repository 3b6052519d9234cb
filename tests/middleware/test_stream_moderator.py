"""StreamModerator: hold-back, release after a passing check, no leak on a block, bounds."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail import Action, Guard, load_policy
from guardrail.classifiers.embedded import EmbeddedClassifier
from guardrail.policy import OnError
from guardrail.streaming import LONG_SENTENCE, StreamModerator, sentence_ends
from guardrail.testing import FakeClassifier
from tests.conftest import POLICIES

BAD = "BLOCKME"


def _guard(**options: object) -> tuple[Guard, FakeClassifier]:
    fake = FakeClassifier(
        by_substring={BAD: {"unsafe": 0.99}, "FLAGME": {"unsafe": 0.7}}, **options
    )
    return Guard(load_policy(POLICIES / "basic.yaml"), classifier=fake), fake


def _run(moderator: StreamModerator, deltas: list[str]) -> tuple[str, bool]:
    out = []
    for delta in deltas:
        step = moderator.feed(delta)
        out.append(step.released)
        if step.blocked:
            return "".join(out), True
    step = moderator.finish()
    out.append(step.released)
    return "".join(out), step.blocked


def test_nothing_is_released_before_a_passing_check() -> None:
    guard, fake = _guard()
    moderator = StreamModerator(guard, check_every=50)
    step = moderator.feed("Hello there, this is a short start")
    assert step == type(step)("", None, False)
    assert len(fake.calls) == 0
    assert moderator.held == len("Hello there, this is a short start")


def test_clean_stream_is_released_whole_and_checked_with_the_prompt() -> None:
    guard, fake = _guard()
    moderator = StreamModerator(guard, prompt="Tell me a story", check_every=20)
    deltas = ["Once upon a time ", "there was a cat. ", "It slept all day. ", "The end."]
    released, blocked = _run(moderator, deltas)
    assert not blocked
    assert released == "".join(deltas) == moderator.text
    assert all(s.context == "Tell me a story" and s.role == "response" for s in fake.calls[0])
    # every check covers everything from the start of the stream
    assert all(moderator.text.startswith(s.text) for batch in fake.calls for s in batch)


def test_block_in_the_middle_leaks_no_byte_of_the_blocked_part() -> None:
    guard, _ = _guard()
    moderator = StreamModerator(guard, check_every=10)
    safe = "The weather is nice today. We went for a walk. "
    bad = f"Then {BAD} happened. "
    deltas = [w + " " for w in (safe + bad).split()]
    released, blocked = _run(moderator, [*deltas, "More text."])
    assert blocked and moderator.blocked
    assert BAD not in released
    assert "Then" not in released
    assert safe.startswith(released)
    assert moderator.feed("even more").released == ""
    assert moderator.finish().blocked


def test_flag_keeps_releasing_and_reports_the_verdict() -> None:
    seen: list[tuple[Action, str]] = []
    guard, _ = _guard()
    moderator = StreamModerator(
        guard, check_every=5, on_verdict=lambda v, stage: seen.append((v.action, stage))
    )
    released, blocked = _run(moderator, ["Some FLAGME text. ", "And more. "])
    assert not blocked
    assert released == "Some FLAGME text. And more. "
    assert moderator.verdict is not None and moderator.verdict.action is Action.FLAG
    assert (Action.FLAG, "stream_chunk") in seen
    assert seen[-1][1] == "post_call"


def test_finish_reuses_the_last_check_when_nothing_is_new() -> None:
    guard, fake = _guard()
    moderator = StreamModerator(guard, check_every=5, at_sentences=False)
    assert moderator.feed("abcdefgh").released == "abcdefgh"
    step = moderator.finish()
    assert step.released == "" and step.verdict is not None and len(fake.calls) == 1


def test_at_sentences_waits_for_the_sentence_end() -> None:
    guard, _ = _guard()
    moderator = StreamModerator(guard, check_every=30)
    assert moderator.feed("A sentence that goes on").released == ""
    assert moderator.feed(" and on. Next").released == "A sentence that goes on and on. "
    assert moderator.held == len("Next")


def test_a_runaway_sentence_is_not_held_forever() -> None:
    guard, _ = _guard()
    moderator = StreamModerator(guard, check_every=1)
    words = ["word "] * (LONG_SENTENCE // 5 + 1)
    released = "".join(moderator.feed(w).released for w in words)
    assert released and moderator.held < LONG_SENTENCE + 1


def test_every_sentence_with_check_every_one() -> None:
    guard, fake = _guard()
    moderator = StreamModerator(guard, check_every=1)
    steps = [moderator.feed(d).released for d in ["Hi. ", "How are ", "you? ", "Fine."]]
    assert steps == ["Hi. ", "", "How are you? ", ""]
    assert moderator.finish().released == "Fine."
    assert len(fake.calls) == 3


def test_classifier_error_follows_on_error() -> None:
    guard, _ = _guard(error="model crashed")
    moderator = StreamModerator(guard, check_every=5, at_sentences=False)
    step = moderator.feed("hello world")
    assert step.blocked and step.verdict is not None
    assert step.verdict.decided_by == ("error",)
    open_policy = load_policy(POLICIES / "basic.yaml").model_copy(
        update={"on_error": OnError.ALLOW}
    )
    fail_open = Guard(open_policy, classifier=FakeClassifier(error="model crashed"))
    moderator = StreamModerator(fail_open, check_every=5, at_sentences=False)
    assert moderator.feed("hello world").released == "hello world"


def test_misuse_raises() -> None:
    guard, _ = _guard()
    with pytest.raises(ValueError, match="check_every"):
        StreamModerator(guard, check_every=0)
    moderator = StreamModerator(guard)
    moderator.finish()
    with pytest.raises(RuntimeError):
        moderator.feed("late")
    with pytest.raises(RuntimeError):
        moderator.finish()
    with pytest.raises(TypeError):
        StreamModerator(guard).feed(b"bytes")  # type: ignore[arg-type]  # deliberate misuse


def test_sentence_ends() -> None:
    assert sentence_ends("One. Two! Three? four") == [5, 10, 17]
    assert sentence_ends("pi is 3.14 ok") == []
    assert sentence_ends("你好。世界！") == [3, 6]
    assert sentence_ends("line\nnext") == [5]


async def test_async_matches_sync() -> None:
    deltas = ["Fine start. ", "More fine. ", f"Now {BAD}. ", "tail"]
    guard, _ = _guard()
    sync = StreamModerator(guard, check_every=8)
    expected = _run(sync, deltas)
    moderator = StreamModerator(guard, check_every=8)
    out = []
    for delta in deltas:
        step = await moderator.afeed(delta)
        out.append(step.released)
        if step.blocked:
            break
    else:
        out.append((await moderator.afinish()).released)
    assert ("".join(out), moderator.blocked) == expected
    assert expected[1] is True and BAD not in expected[0]


_TEXT = st.text(alphabet=st.sampled_from(list("abc de.!?\n")), max_size=120)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deltas=st.lists(_TEXT, max_size=30),
    every=st.integers(min_value=1, max_value=300),
    at_sentences=st.booleans(),
)
def test_bounds_hold_for_any_chunking(deltas: list[str], every: int, at_sentences: bool) -> None:
    guard, fake = _guard()
    moderator = StreamModerator(guard, check_every=every, at_sentences=at_sentences)
    for delta in deltas:
        moderator.feed(delta)
        ends = sentence_ends(moderator.text)
        sentence = len(moderator.text) - (ends[-1] if ends else 0)
        assert moderator.held <= every + sentence
        assert moderator.held < every + max(every, LONG_SENTENCE)
    released = moderator.released_text + moderator.finish().released
    assert released == moderator.text
    length = len(moderator.text)
    assert len(fake.calls) <= math.ceil(length / every) + 1


def test_embedded_default_judges_the_newest_sentence_on_its_own() -> None:
    """Through the real default classifier: a harmful sentence after a long benign answer is
    scored as its own window, so the dilution in everything before it does not hide it."""
    guard = Guard.from_policy("default")
    benign = (
        "The weather was lovely today. We walked along the river and fed the ducks. "
        "The museum was closed, so we had a long lunch in the old town instead. "
        "In the evening we watched the sunset from the bridge and talked about the trip. "
    )
    harmful = "Kill all the immigrants, they are vermin and deserve to die. "
    whole = guard.check_response(benign * 3 + harmful)
    floor = EmbeddedClassifier.Options().window_min_response
    assert whole.scores.unsafe >= floor and whole.action is Action.BLOCK
    assert any("window" in note for note in whole.scores.notes)
    moderator = StreamModerator(guard, prompt="How was your day?", check_every=80)
    released, blocked = _run(moderator, [benign * 3, harmful, "And then we went home."])
    assert blocked
    assert "immigrants" not in released and released.startswith("The weather")
