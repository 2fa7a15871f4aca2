"""The /proc parsing behind the peak memory and CPU time of each process."""

from __future__ import annotations

import pytest
from learnflow_stack.bench.usage import (
    cpu_ticks,
    descendants,
    parent_pid,
    status_kib,
    stolen_ticks,
)

# -- /proc parsing for memory and CPU -----------------------------------------------------------

_STATUS = "Name:\tdaprd\nVmPeak:\t 1500000 kB\nVmHWM:\t   148736 kB\nVmRSS:\t  120000 kB\n"


def test_status_kib_reads_the_named_field() -> None:
    assert status_kib(_STATUS, "VmHWM") == 148736
    assert status_kib(_STATUS, "VmRSS") == 120000
    assert status_kib("Name:\tkthreadd\n", "VmHWM") is None  # kernel threads have none


def test_parent_pid_survives_spaces_and_parentheses_in_the_command_name() -> None:
    assert parent_pid("4242 (postgres) S 4000 4242 4242 0 -1") == 4000
    assert parent_pid("77 (odd (name) x) R 12 77 77 0 -1") == 12


def test_cpu_ticks_adds_user_and_system_time_and_optionally_reaped_children() -> None:
    # Fields from 3 on: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    # utime stime cutime cstime ...
    stat = "9 (uvicorn app) S 1 9 9 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 4"

    assert cpu_ticks(stat, reaped_children=False) == 300
    assert cpu_ticks(stat, reaped_children=True) == 310


def test_descendants_walks_the_whole_subtree_only() -> None:
    parents = {2: 1, 3: 2, 4: 2, 5: 4, 9: 8}

    assert sorted(descendants(2, parents)) == [3, 4, 5]
    assert descendants(5, parents) == []


def test_stolen_ticks_is_the_eighth_value_of_the_cpu_line() -> None:
    proc_stat = (
        "cpu  913298 0 226444 1172578 14399 0 16136 58712 0 0\n"
        "cpu0 456000 0 113000 586000 7000 0 8000 29000 0 0\n"
        "intr 1 2 3\n"
    )
    assert stolen_ticks(proc_stat) == 58712
    assert stolen_ticks("cpu  1 2 3 4 5 6 7\n") == 0  # a kernel too old to count it
    with pytest.raises(ValueError, match="no cpu line"):
        stolen_ticks("intr 1 2 3\n")
