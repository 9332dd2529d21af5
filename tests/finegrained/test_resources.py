"""The memory guard's size parser and check (finegrained/resources.py)."""

from __future__ import annotations

import pytest

from finegrained.resources import check_memory, format_bytes, parse_size
from instances.errors import ParameterError, ResourceLimitError


@pytest.mark.parametrize(("text", "expected"), [
    ("4096", 4096), ("1.5G", 3 * 2**29), ("512MiB", 2**29), (" 2 k ", 2048), ("0.1G", 107374182), (".5K", 512),
    ("1" + "0" * 400, 10**400), ("1" + "0" * 400 + "G", 10**400 * 2**30), ("3T", 3 * 2**40), ("1.", 1),
])
def test_parse_size_is_exact(text, expected):
    # exact decimal arithmetic: a 400-digit size is a (huge) int, not float('inf') and an OverflowError
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "1.5.2G", "-1G", "1e9", "1 X", "inf", "nan", "1" * 100 + "Q"])
def test_parse_size_refuses_other_text(text):
    with pytest.raises(ParameterError, match="cannot read memory size") as info:
        parse_size(text)
    assert len(str(info.value)) < 150  # the text is quoted at most 60 characters long


def test_parse_size_refuses_zero():
    with pytest.raises(ParameterError, match="memory size must be at least 1 byte, got '0.1'"):
        parse_size("0.1")


def test_check_memory_with_a_huge_limit_and_a_huge_need():
    check_memory(2**40, parse_size("1" + "0" * 400), "x")  # no error: the limit is larger
    want = r"x would need about 2\^1328\.8 bytes of memory, over the limit of 1\.0 GiB"
    with pytest.raises(ResourceLimitError, match=want):
        check_memory(10**400, 2**30, "x")
    assert format_bytes(10**400) == "2^1328.8 bytes"
