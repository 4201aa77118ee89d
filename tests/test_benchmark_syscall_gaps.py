"""The syscall-gap tool: perf's tracepoint lines become per-round-trip stretches."""

import sys

import pytest

from .utils import benchmark_module


@pytest.fixture(scope="module")
def gaps():
    with benchmark_module("syscall_gaps.py", "bench_gaps") as module:
        yield module


def lines(*events):
    return "\n".join(f"  {t:.9f}:  syscalls:{name}: fd: 0x3" for t, name in events)


ROUND_TRIP = [
    (0.000010, "sys_exit_epoll_wait"),
    (0.000012, "sys_enter_recvfrom"),
    (0.000013, "sys_exit_recvfrom"),
    (0.000020, "sys_enter_sendto"),
    (0.000040, "sys_exit_sendto"),
    (0.000045, "sys_enter_epoll_wait"),
]


def shifted(events, by):
    return [(t + by, name) for t, name in events]


def test_parse_script_reads_time_and_event(gaps):
    text = lines(*ROUND_TRIP) + "\nnot a line\n\n"
    events = gaps.parse_script(text)
    assert events == [(pytest.approx(t), name) for t, name in ROUND_TRIP]


def test_round_trips_measures_each_stretch(gaps):
    events = gaps.parse_script(lines(*ROUND_TRIP, *shifted(ROUND_TRIP, 0.0001)))
    durations = gaps.round_trips(events)
    assert durations["wake -> read"] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert durations["read -> reply"] == [pytest.approx(7.0), pytest.approx(7.0)]
    assert durations["reply (syscall)"] == [pytest.approx(20.0), pytest.approx(20.0)]
    assert durations["reply -> wait"] == [pytest.approx(5.0), pytest.approx(5.0)]


def test_round_trips_skip_irregular_sequences(gaps):
    # A read that found nothing (EAGAIN) and a reply in two calls: neither is counted.
    irregular = [
        (0.000001, "sys_exit_epoll_wait"),
        (0.000002, "sys_enter_recvfrom"),
        (0.000003, "sys_exit_recvfrom"),
        (0.000004, "sys_enter_recvfrom"),
        (0.000005, "sys_exit_recvfrom"),
        (0.000006, "sys_enter_sendto"),
        (0.000007, "sys_exit_sendto"),
        (0.000008, "sys_enter_sendto"),
        (0.000009, "sys_exit_sendto"),
        (0.000010, "sys_enter_epoll_wait"),
    ]
    events = gaps.parse_script(lines(*irregular, *shifted(ROUND_TRIP, 0.001)))
    durations = gaps.round_trips(events)
    assert durations["read -> reply"] == [pytest.approx(7.0)]


def test_server_process_puts_the_variant_first_on_the_path(gaps, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    process = gaps.server_process("tether@/other/src", "asyncio", [])
    assert process.env is not None
    assert process.env["PYTHONPATH"].split(":") == ["/other/src", "/elsewhere"]
    assert process.command[1].endswith("tether_server.py")
    assert gaps.server_process("picows", "asyncio", []).env is None


def test_variants_and_their_log_names(gaps):
    run = sys.modules["run"]
    assert run.variant("picows") == ("picows", None)
    name, env = run.variant("tether@/a/b/src")
    assert name == "tether"
    assert env is not None
    assert env["PYTHONPATH"].split(":")[0] == "/a/b/src"
    assert run.log_name("tether@/a/b/src") == "tether-_a_b_src"


CALLGRIND = """\
version: 1
creator: callgrind-3.19.0
events: Ir
fn=(1) main
10 100
cfn=(2) sock_send
calls=3 5
10 40
cfn=(3) send
calls=2 7
10 30
fn=(2)
cfn=(3)
calls=1 9
10 20
summary: 1234
totals: 1234
"""


def test_instructions_parse_callgrind_totals_and_calls():
    with benchmark_module("instructions.py", "bench_ins") as module:
        assert module.parse_callgrind(CALLGRIND) == (1234, 3)  # send: 2 calls + 1 call
        assert module.parse_callgrind(CALLGRIND, "sock_send") == (1234, 3)
        assert module.parse_callgrind(CALLGRIND, "missing") == (1234, 0)
