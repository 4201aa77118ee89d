from tether.relay.presence import PresenceDiff, PresenceState


def test_join_leave_diffs():
    state = PresenceState()
    assert state.join("t", "c1", {"n": 1}, now=0) == PresenceDiff(joins={"c1": {"n": 1}})
    assert state.join("t", "c1", {"n": 1}, now=1) == PresenceDiff()
    assert not state.join("t", "c1", {"n": 1}, now=1)
    assert state.join("t", "c1", {"n": 2}, now=2) == PresenceDiff(joins={"c1": {"n": 2}})
    assert state.entries("t", now=3) == {"c1": {"n": 2}}
    assert state.count("t", now=3) == 1
    assert state.leave("t", "c1") == PresenceDiff(leaves={"c1": {"n": 2}})
    assert state.leave("t", "c1") == PresenceDiff()
    assert state.leave("other", "c1") == PresenceDiff()
    assert state.topics() == []
    assert len(state) == 0


def test_ttl_expiry_with_explicit_time():
    state = PresenceState(ttl=10)
    state.join("t", "a", 1, now=0)
    state.join("t", "b", 2, now=5)
    state.join("u", "a", 3, now=0)
    assert state.count("t", now=9.9) == 2
    assert state.entries("t", now=10) == {"b": 2}
    assert state.expire(now=9) == {}
    assert state.expire(now=10) == {
        "t": PresenceDiff(leaves={"a": 1}),
        "u": PresenceDiff(leaves={"a": 3}),
    }
    assert state.topics() == ["t"]
    state.refresh(now=14)
    assert state.expire(now=23) == {}
    assert state.expire(now=24) == {"t": PresenceDiff(leaves={"b": 2})}
    assert len(state) == 0


def test_refresh_selected_topics_and_rejoin_after_expiry():
    state = PresenceState(ttl=1)
    state.join("t", "a", 1, now=0)
    state.join("u", "a", 1, now=0)
    state.refresh(now=0.5, topics=["t", "missing"])
    assert state.count("t", now=1.2) == 1
    assert state.count("u", now=1.2) == 0
    # An expired entry that is set again is a new join.
    assert state.join("u", "a", 1, now=2) == PresenceDiff(joins={"a": 1})


def test_no_ttl_never_expires():
    state = PresenceState()
    state.join("t", "a", 1, now=0)
    assert state.expire(now=1e12) == {}


def test_diff_merge_and_payload():
    diff = PresenceDiff(joins={"a": 1}).merge(PresenceDiff(leaves={"a": 1, "b": 2}))
    assert diff == PresenceDiff(joins={}, leaves={"b": 2})
    diff = diff.merge(PresenceDiff(joins={"c": 3}))
    assert diff.to_payload() == {"joins": {"c": 3}, "leaves": {"b": 2}}
    assert bool(diff)
    assert not PresenceDiff()
