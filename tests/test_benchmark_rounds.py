"""The benchmark harness's rounds: each figure is the median round, with the spread shown."""

import pytest

from .utils import benchmark_module


@pytest.fixture(scope="module")
def run():
    with benchmark_module("run.py", "bench_run") as module:
        yield module


def result(run, value, errors=0, cpu=0.5):
    if value is None:
        return run.Result(6, "tether", "asyncio", None, "", errors=1, failure="boom")
    return run.Result(6, "tether", "asyncio", value, "conn/s", errors=errors, srv_cpu=cpu)


def test_the_median_round_gives_the_figure_and_its_cpu(run):
    rounds = [result(run, 3000.0, cpu=0.9), result(run, 2500.0, cpu=0.7), result(run, 3300.0)]
    combined = run.median_of_rounds(rounds)
    assert combined.value == 3000.0
    assert combined.srv_cpu == 0.9
    assert combined.rounds == [3000.0, 2500.0, 3300.0]
    assert run.rounds_cell(combined) == "2,500-3,300"


def test_failed_rounds_count_as_errors_and_the_rest_still_give_a_figure(run):
    rounds = [result(run, None), result(run, 2000.0, errors=2), result(run, 1000.0)]
    combined = run.median_of_rounds(rounds)
    assert combined.value == 1000.0  # the lower middle of two measured rounds
    assert combined.errors == 3
    all_failed = run.median_of_rounds([result(run, None), result(run, None)])
    assert all_failed.value is None
    assert all_failed.failure == "boom"
    assert all_failed.errors == 2


def test_a_single_round_shows_no_spread(run):
    combined = run.median_of_rounds([result(run, 42.0)])
    assert combined.value == 42.0
    assert combined.rounds == []
    assert run.rounds_cell(combined) == ""


def test_every_other_round_measures_the_servers_in_reverse_order(run):
    servers = ["tether", "websockets", "picows"]
    orders = [run.round_order(servers, number) for number in range(4)]
    assert orders[0] == orders[2] == servers
    assert orders[1] == orders[3] == ["picows", "websockets", "tether"]
    assert servers == ["tether", "websockets", "picows"]  # not reordered in place


def test_the_paired_ratio_is_the_median_of_same_round_ratios(run):
    def rounds(*values):
        return run.median_of_rounds([result(run, v) for v in values])

    tether = rounds(100.0, 300.0, None, 90.0, 200.0)
    picows = rounds(50.0, 300.0, 60.0, 100.0, None)
    # Rounds both measured: 100/50, 300/300, 90/100 -> 2.0, 1.0, 0.9.
    assert run.paired_ratio(tether, picows) == 1.0
    assert run.paired_ratio(rounds(10.0, 20.0), rounds(5.0, 20.0)) == 1.5
    assert run.paired_ratio(rounds(10.0, None), rounds(5.0, 5.0)) is None
    assert run.paired_ratio(rounds(10.0), rounds(5.0)) is None


def test_the_target_cell_shows_the_paired_ratio(run):
    tether = run.median_of_rounds(
        [run.Result(2, "tether", "asyncio", v, "msg/s") for v in (10.0, 12.0, 8.0)]
    )
    picows = run.median_of_rounds(
        [run.Result(2, "picows", "asyncio", v, "msg/s") for v in (8.0, 12.0, 10.0)]
    )
    cell = run.target_cell([tether, picows], tether)
    assert cell == "1.00x picows (>=1.0): met; paired 1.00x"


def test_the_median_interval_is_the_binomial_order_statistics(run):
    # Five values cannot give 95%: both extremes fall on one side of the median with
    # probability 2/32. Six can: 2/64.
    assert run.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    assert run.median_interval([6.0, 1.0, 5.0, 2.0, 4.0, 3.0]) == (1.0, 6.0)
    # The published table for 31 values: the 10th and the 22nd.
    values = [float(v) for v in range(31, 0, -1)]
    assert run.median_interval(values) == (10.0, 22.0)
    assert run.median_interval(values, confidence=0.5) == (14.0, 18.0)
    assert run.median_interval([]) is None


def test_the_target_cell_gives_the_interval_and_the_rounds_ahead(run):
    def rounds(server, values):
        return run.median_of_rounds([run.Result(2, server, "asyncio", v, "msg/s") for v in values])

    tether = rounds("tether", [11.0, 9.0, 10.5, 12.0, 9.5, 10.0, 13.0])
    picows = rounds("picows", [10.0] * 7)
    cell = run.target_cell([tether, picows], tether)
    assert cell == "1.05x picows (>=1.0): met; paired 1.05x (95% 0.90-1.30x, ahead in 4 of 7)"


def test_tether_is_measured_next_to_picows_in_every_round(run):
    servers = [*run.LIBRARIES, run.CALIBRATION]
    for number in range(2):
        order = run.round_order(servers, number)
        assert abs(order.index("tether") - order.index("picows")) == 1
