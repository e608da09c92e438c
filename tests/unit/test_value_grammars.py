"""The value grammars every component shares (kubelab.durations, .quantity, .procid,
.timestamps), each against upstream's own examples: Go's time.ParseDuration test table and
apimachinery's resource.Quantity parse tests."""

import os
import subprocess
from fractions import Fraction

import pytest

from kubelab import procid, quantity
from kubelab.durations import parse_duration, parse_duration_ns, parse_flag_duration
from kubelab.timestamps import format_micro_time, parse_epoch

NS, US, MS, S, M, H = 1, 10**3, 10**6, 10**9, 60 * 10**9, 3600 * 10**9


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("5s", 5 * S), ("30s", 30 * S), ("1478s", 1478 * S), ("-5s", -5 * S), ("+5s", 5 * S),
    ("-0", 0), ("+0", 0), ("5.0s", 5 * S), ("5.6s", 5 * S + 600 * MS), ("5.s", 5 * S), (".5s", 500 * MS),
    ("1.0s", S), ("1.00s", S), ("1.004s", S + 4 * MS), ("1.0040s", S + 4 * MS), ("100.00100s", 100 * S + MS),
    ("10ns", 10), ("11us", 11 * US), ("12µs", 12 * US), ("12μs", 12 * US), ("13ms", 13 * MS), ("14s", 14 * S),
    ("15m", 15 * M), ("16h", 16 * H), ("3h30m", 3 * H + 30 * M), ("10.5s4m", 4 * M + 10 * S + 500 * MS),
    ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)), ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6),
    ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS), ("52763797000ns", 52763797000),
    ("0.3333333333333333333h", 20 * M), ("9007199254740993ns", 9007199254740993),
    ("9223372036854775807ns", 2**63 - 1), ("9223372036854775.807us", 2**63 - 1),
    ("-9223372036854775808ns", -(2**63)), ("1m30s", 90 * S),
])
def test_go_parse_duration_table(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "\x85\x85", "1.5 s",
                                  "9223372036854775808ns", "-9223372036854775809ns", "5 minutes", "1m 30s"])
def test_go_parse_duration_errors(text):
    with pytest.raises(ValueError):
        parse_duration_ns(text)


def test_flag_durations_also_take_bare_seconds():
    assert parse_duration("1m30s") == 90 and parse_flag_duration("0.5") == 0.5 and parse_flag_duration("2") == 2
    assert parse_flag_duration("500ms") == 0.5
    with pytest.raises(ValueError):
        parse_duration("2")  # Go: missing unit


@pytest.mark.parametrize("text,value", [
    ("0", 0), ("0n", 0), ("0u", 0), ("0m", 0), ("0Ki", 0), ("0k", 0), ("0Mi", 0), ("0M", 0), ("0Gi", 0), ("0G", 0),
    ("0Ti", 0), ("0T", 0), ("0.0", 0), ("+0", 0), ("-0", 0), ("1", 1), ("1.", 1), (".5", Fraction(1, 2)),
    ("100m", Fraction(1, 10)), ("1.5", Fraction(3, 2)), ("128Mi", 128 * 2**20), ("5Gi", 5 * 2**30),
    ("1k", 1000), ("1M", 10**6), ("1E", 10**18), ("1e3", 1000), ("1E3", 1000), ("1e+3", 1000),
    ("1e-3", Fraction(1, 1000)), ("12e6", 12 * 10**6), ("100n", Fraction(1, 10**7)), ("7u", Fraction(7, 10**6)),
    ("-1", -1), ("-100m", Fraction(-1, 10)), ("129e6", 129 * 10**6), (3, 3), (0.5, Fraction(1, 2)),
])
def test_quantity_parses_upstream_examples(text, value):
    assert quantity.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-",
                                  "1e", "1K", "1e3Mi", "", ".", "1 Gi", "lots", None, True])
def test_quantity_rejects_what_upstream_rejects(text):
    assert not quantity.is_quantity(text)
    with pytest.raises(ValueError, match="quantities must match"):
        quantity.parse_quantity(text)


def test_quantity_rounds_up_like_milli_value_and_value():
    assert quantity.milli_value("100m") == 100 and quantity.milli_value("0.1") == 100
    assert quantity.milli_value("1n") == 1  # MilliValue rounds up
    assert quantity.value("1.5") == 2 and quantity.value("128Mi") == 128 * 2**20


def test_micro_time_round_trips():
    s = format_micro_time(1700000000.25)
    assert s == "2023-11-14T22:13:20.250000Z" and parse_epoch(s) == 1700000000.25
    assert format_micro_time(1700000000.9999999).endswith("21.000000Z")  # carry, not .1000000


def test_procid_tells_a_recycled_pid_and_zombies():
    p = subprocess.Popen(["sleep", "30"])
    try:
        st = procid.start_time(p.pid)
        assert st and procid.same_process(p.pid, st) and not procid.same_process(p.pid, st + 1)
        p.kill()
        deadline_ok = False
        for _ in range(500):  # a zombie until reaped: gone for same_process, still there when asked
            with open(f"/proc/{p.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    deadline_ok = True
                    break
            os.sched_yield()
        if deadline_ok:
            assert procid.start_time(p.pid) is None and procid.start_time(p.pid, zombie_ok=True) == st
    finally:
        p.kill()
        p.wait()
    assert procid.start_time(p.pid) is None and not procid.same_process(p.pid, st)
    assert not procid.same_process(1, procid.start_time(1))  # never PID 1
