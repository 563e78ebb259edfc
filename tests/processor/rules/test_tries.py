"""Starved or heavy, and which try this is: the rules on plain numbers."""

from __future__ import annotations

import pytest

from processor.core.ports import Reading
from processor.rules.tries import (
    MAX_INTERRUPTED,
    ONE_VCPU_MB,
    STARVED_TRIES,
    cpu_ratio,
    cpu_share,
    interrupted,
    retry_starved,
    starved,
    this_try,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("memory_mb", "share"),
    [(None, 1.0), (ONE_VCPU_MB, 1.0), (10240, 1.0), (512, 512 / ONE_VCPU_MB), (128, 128 / 1769)],
)
def test_an_image_counts_on_the_functions_share_of_one_cpu(memory_mb, share):
    assert cpu_share(memory_mb) == pytest.approx(share)


@pytest.mark.parametrize(
    ("wall", "cpu", "share", "is_starved"),
    [
        (30.0, 3.0, 1.0, True),  # a tenth of a CPU on a 1-vCPU function: waited for it
        (30.0, 14.9, 1.0, True),  # just under half
        (30.0, 15.0, 1.0, False),  # half: not starved
        (30.0, 30.0, 1.0, False),  # one busy CPU all along: heavy
        (30.0, 55.0, 1.0, False),  # libvips' threads on two CPUs: heavy
        (30.0, 7.5, 512 / 1769, False),  # a 512 MB function gets 0.29 of a CPU: 0.25 is its own
        (30.0, 3.0, 512 / 1769, True),  # 0.1 is not
        (0.0, 0.0, 1.0, False),  # nothing measured: no verdict
    ],
)
def test_starved_means_less_than_half_the_cpu_the_function_is_entitled_to(
    wall, cpu, share, is_starved
):
    assert starved(Reading(wall=wall, cpu=cpu), share) is is_starved


def test_the_ratio_is_cpu_over_wall():
    assert cpu_ratio(Reading(wall=20.0, cpu=5.0)) == 0.25
    assert cpu_ratio(Reading(wall=0.0, cpu=1.0)) == 0.0


def test_a_starved_timeout_is_tried_once_more_and_a_heavy_one_never():
    starved_try = Reading(wall=30.0, cpu=2.0)
    heavy_try = Reading(wall=30.0, cpu=31.0)
    assert STARVED_TRIES == 2
    assert retry_starved(starved_try, 1.0, tries=1)
    assert not retry_starved(starved_try, 1.0, tries=2)  # the retry's timeout is final
    assert not retry_starved(heavy_try, 1.0, tries=1)


@pytest.mark.parametrize(
    ("event_tries", "counted", "expected_try", "expected_interrupted"),
    [
        (0, 1, 1, 0),  # a first delivery, counted when the invocation took it up
        (0, 2, 2, 1),  # the one before died with its invocation
        (0, 3, 3, 2),  # two died
        (1, 2, 2, 0),  # the retry of a starved try: its message accounts for try 1
        (1, 3, 3, 1),  # ... and the retry's own delivery before this one died
        (1, None, 2, 0),  # a record past processing (a new upload to a done key): the message
        (0, None, 1, 0),
    ],
)
def test_which_try_this_is_and_how_many_died_before_it(
    event_tries, counted, expected_try, expected_interrupted
):
    assert this_try(event_tries=event_tries, counted=counted) == expected_try
    assert interrupted(event_tries=event_tries, counted=counted) == expected_interrupted


def test_an_image_is_failed_after_two_tries_died_with_their_invocation():
    assert MAX_INTERRUPTED == 2
