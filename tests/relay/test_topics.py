import pytest

from tether.relay.errors import InvalidTopic
from tether.relay.topics import (
    MAX_TOPIC_LENGTH,
    PatternTable,
    presence_channel,
    validate_pattern,
    validate_topic,
)


@pytest.mark.parametrize("topic", ["a", "chat:lobby", "room:1:x", "é", "x" * MAX_TOPIC_LENGTH])
def test_valid_topics(topic):
    assert validate_topic(topic) == topic


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        (1, "topic must be a string"),
        (None, "topic must be a string"),
        ("", "topic must not be empty"),
        ("x" * (MAX_TOPIC_LENGTH + 1), f"topic longer than {MAX_TOPIC_LENGTH} characters"),
        ("room:*", "topic must not contain '*'"),
        ("a b", "topic must not contain whitespace or control characters"),
        ("a\x00b", "topic must not contain whitespace or control characters"),
        ("a\nb", "topic must not contain whitespace or control characters"),
    ],
)
def test_invalid_topics(topic, message):
    with pytest.raises(InvalidTopic) as info:
        validate_topic(topic)
    assert str(info.value) == message


def test_presence_channel_is_never_a_valid_topic():
    with pytest.raises(InvalidTopic):
        validate_topic(presence_channel("a"))


@pytest.mark.parametrize("pattern", ["*", "room:*", "chat:lobby"])
def test_valid_patterns(pattern):
    assert validate_pattern(pattern) == pattern


@pytest.mark.parametrize("pattern", ["**", "a*b*", "a*b", "", " *", 3])
def test_invalid_patterns(pattern):
    with pytest.raises(InvalidTopic):
        validate_pattern(pattern)


def test_exact_beats_prefix_and_longer_prefix_beats_shorter():
    table = PatternTable()
    table.add("*", "any")
    table.add("room:*", "room")
    table.add("room:vip:*", "vip")
    table.add("room:vip:1", "exact")
    assert table.match("room:vip:1") == "exact"
    assert table.match("room:vip:2") == "vip"
    assert table.match("room:2") == "room"
    assert table.match("other") == "any"
    assert len(table) == 4
    assert sorted(table) == ["*", "room:*", "room:vip:*", "room:vip:1"]


def test_registration_order_does_not_matter():
    table = PatternTable()
    table.add("room:vip:*", "vip")
    table.add("room:*", "room")
    assert table.match("room:vip:x") == "vip"


def test_no_match():
    table = PatternTable()
    table.add("room:*", "room")
    assert table.match("chat") is None
    assert table.match("room") is None


@pytest.mark.parametrize("pattern", ["room:*", "chat"])
def test_duplicate_pattern(pattern):
    table = PatternTable()
    table.add(pattern, 1)
    with pytest.raises(ValueError, match="pattern already registered"):
        table.add(pattern, 2)
