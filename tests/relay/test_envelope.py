import json

import pytest

from tether.relay import envelope
from tether.relay.envelope import Ping, Publish, Subscribe, Unsubscribe, parse
from tether.relay.errors import EnvelopeError


SINCE = "since must be a non-negative integer"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"subscribe","topic":"a"}', Subscribe("a")),
        ('{"type":"subscribe","topic":"a","since":3}', Subscribe("a", 3)),
        ('{"type":"subscribe","topic":"a","presence":true}', Subscribe("a", None, True)),
        ('{"type":"unsubscribe","topic":"a"}', Unsubscribe("a")),
        ('{"type":"message","topic":"a","event":"e","payload":[1]}', Publish("a", "e", [1])),
        ('{"type":"message","topic":"a","event":"e","payload":null}', Publish("a", "e", None)),
        ('{"type":"ping"}', Ping()),
        ('{"type":"ping","extra":1}', Ping()),
    ],
)
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("data", "message", "topic"),
    [
        (b'{"type":"ping"}', "binary messages are not supported", None),
        ("{", "malformed json", None),
        ("", "malformed json", None),
        ('{"type":"ping"} x', "malformed json", None),
        ("[" * 20_000 + "]" * 20_000, "malformed json", None),
        ('{"type":"message","topic":"a","event":"e","payload":NaN}', "malformed json", None),
        ("[]", "message must be a json object", None),
        ('"ping"', "message must be a json object", None),
        ("{}", "missing field: type", None),
        ('{"type":7}', "type must be a string", None),
        ('{"type":"nope"}', "unknown type: nope", None),
        ('{"type":"subscribe"}', "missing field: topic", None),
        ('{"type":"subscribe","topic":""}', "invalid topic: topic must not be empty", None),
        ('{"type":"subscribe","topic":5}', "invalid topic: topic must be a string", None),
        ('{"type":"subscribe","topic":"a","since":-1}', SINCE, "a"),
        ('{"type":"subscribe","topic":"a","since":"1"}', SINCE, "a"),
        ('{"type":"subscribe","topic":"a","since":true}', SINCE, "a"),
        ('{"type":"subscribe","topic":"a","presence":1}', "presence must be a boolean", "a"),
        ('{"type":"unsubscribe"}', "missing field: topic", None),
        ('{"type":"message","topic":"a","payload":1}', "missing field: event", "a"),
        ('{"type":"message","topic":"a","event":"e"}', "missing field: payload", "a"),
    ],
)
def test_parse_errors(data, message, topic):
    with pytest.raises(EnvelopeError) as info:
        parse(data)
    assert info.value.message == message
    assert info.value.topic == topic


@pytest.mark.parametrize("event", ["", 5, "x" * (envelope.MAX_EVENT_LENGTH + 1)])
def test_bad_event(event):
    with pytest.raises(EnvelopeError) as info:
        parse(json.dumps({"type": "message", "topic": "a", "event": event, "payload": 1}))
    assert info.value.message.startswith("event must be a non-empty string")
    assert info.value.topic == "a"


def test_size_limit_counts_utf8_bytes():
    ok = json.dumps({"type": "message", "topic": "a", "event": "e", "payload": "x"})
    assert parse(ok, max_size=len(ok)) == Publish("a", "e", "x")
    with pytest.raises(EnvelopeError, match="message too large"):
        parse(ok, max_size=len(ok) - 1)
    wide = '{"type":"message","topic":"a","event":"e","payload":"' + "é" * 10 + '"}'
    assert len(wide) <= 70 < len(wide.encode())
    with pytest.raises(EnvelopeError, match="message too large"):
        parse(wide, max_size=70)


def test_server_messages():
    assert envelope.subscribed_message("a") == '{"type":"subscribed","topic":"a"}'
    assert envelope.unsubscribed_message("a") == '{"type":"unsubscribed","topic":"a"}'
    assert envelope.pong_message() == '{"type":"pong"}'
    assert json.loads(envelope.pong_message()) == {"type": "pong"}
    assert envelope.error_message("boom") == '{"type":"error","message":"boom"}'
    assert json.loads(envelope.error_message("lagged", "a", dropped=3)) == {
        "type": "error",
        "message": "lagged",
        "topic": "a",
        "dropped": 3,
    }
    push = envelope.push_message("a", "e", {"k": "é"})
    assert push == '{"type":"push","topic":"a","event":"e","payload":{"k":"é"}}'


def test_offsets():
    push = envelope.push_message("a", "e", {"offset": 1})
    assert envelope.offset_of(push) is None
    with_offset = envelope.add_offset(push, 42)
    assert json.loads(with_offset) == {
        "type": "push",
        "topic": "a",
        "event": "e",
        "payload": {"offset": 1},
        "offset": 42,
    }
    assert envelope.offset_of(with_offset) == 42
    assert envelope.offset_of("nope") is None
    assert envelope.offset_of('{"offset":x}') is None


def test_unserializable_payload():
    with pytest.raises(TypeError):
        envelope.push_message("a", "e", object())
    with pytest.raises(ValueError):
        envelope.push_message("a", "e", float("nan"))
