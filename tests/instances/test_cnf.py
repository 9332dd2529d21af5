"""DIMACS parsing (strict, with file/line errors), writing through pysat, semantics and brute force."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instances.cnf import CNFFormula, parse_dimacs
from instances.errors import DimacsError, ParameterError


def test_roundtrip_through_pysat(tmp_path):
    f = CNFFormula([[1, -2], [], [2, 2, -2], [3]], num_vars=5)
    path = tmp_path / "f.cnf"
    f.write(path)
    g = CNFFormula.read(path)
    assert g.num_vars == 5 and g.clauses == f.clauses


def test_comments_multiline_clauses_and_percent_marker():
    text = "c hello\np cnf 3 2\n1 -2\n c mid\n 3 0 -1\n0\n%\n0\n"
    assert parse_dimacs(text) == (3, [[1, -2, 3], [-1]])


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("p cnf 3\n1 0\n", 1, "expected header 'p cnf NVARS NCLAUSES'"),
        ("p dnf 3 1\n1 0\n", 1, "expected header"),
        ("p cnf x 1\n1 0\n", 1, "expected integers in header"),
        ("p cnf -1 1\n1 0\n", 1, "non-negative"),
        ("p cnf 2 1\n1 3 0\n", 2, "literal 3 is out of range: the header declares 2 variables"),
        ("p cnf 2 1\n1 -5 0\n", 2, "literal -5 is out of range"),
        ("p cnf 2 1\n1 a 0\n", 2, "expected an integer literal, found 'a'"),
        ("p cnf 2 1\n1.5 0\n", 2, "expected an integer literal, found '1.5'"),
        ("1 2 0\np cnf 2 1\n", 1, "before the first clause"),
        ("p cnf 2 2\n1 2 0\n", 1, "header declares 2 clauses but the file contains 1"),
        ("p cnf 2 1\n1 2 0\np cnf 2 1\n", 3, "second 'p' header"),
        ("p cnf 2 1\n1 2\n", 2, "not terminated by 0"),
        ("p cnf 10 1\n1_0 0\n", 2, "expected an integer literal, found '1_0'"),
        ("p cnf 2 1\n+1 0\n", 2, "found '+1'"),
        ("p cnf 2 1\n\u0661 0\n", 2, "expected an integer literal"),
        ("p cnf +2 1\n1 0\n", 1, "expected integers in header"),
        ("c x\fy\np cnf 2 1\n1 3 0\n", 3, "literal 3 is out of range"),  # a form feed does not end a line
    ],
)
def test_malformed_dimacs_names_file_and_line(text, line, fragment):
    with pytest.raises(DimacsError) as info:
        parse_dimacs(text, "bad.cnf")
    assert info.value.line == line
    assert str(info.value).startswith(f"bad.cnf:{line}: ")
    assert fragment in str(info.value)


def test_byte_order_mark_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "bom.cnf"
    path.write_bytes("\ufeffp cnf 2 1\r\n1 -2 0\r\n".encode())
    f = CNFFormula.read(path)
    assert f.num_vars == 2 and f.clauses == [[1, -2]]


def test_missing_header_and_missing_file(tmp_path):
    with pytest.raises(DimacsError, match="no 'p cnf NVARS NCLAUSES' header"):
        parse_dimacs("c only a comment\n", "x.cnf")
    with pytest.raises(DimacsError, match="no such file"):
        CNFFormula.read(tmp_path / "nope.cnf")
    with pytest.raises(DimacsError, match="is a directory"):
        CNFFormula.read(tmp_path)
    binary = tmp_path / "bin.cnf"
    binary.write_bytes(b"\xff\xfe\x00p cnf")
    with pytest.raises(DimacsError, match="not a text file"):
        CNFFormula.read(binary)


def test_line_numbers_and_bytes_outside_utf8(tmp_path):
    path = tmp_path / "odd.cnf"
    path.write_bytes(b"c a\r\r\np cnf 2 1\n1 x 0\n")  # a stray carriage return does not start a line
    with pytest.raises(DimacsError, match=r"odd.cnf:3: expected an integer literal, found 'x'"):
        CNFFormula.read(path)
    path.write_bytes(b"c caf\xe9 (latin-1 comment)\np cnf 2 1\n1 -2 0\n")
    assert CNFFormula.read(path).clauses == [[1, -2]]
    path.write_bytes(b"p cnf 2 1\n1 \xe9 0\n")
    with pytest.raises(DimacsError, match="odd.cnf:2: expected an integer literal"):
        CNFFormula.read(path)


def test_constructor_checks():
    with pytest.raises(ParameterError, match="literal 0"):
        CNFFormula([[1, 0]])
    with pytest.raises(ParameterError, match="variable 4 occurs"):
        CNFFormula([[4]], num_vars=2)


def test_assignment_checks():
    f = CNFFormula([[1, 2]], num_vars=2)
    with pytest.raises(ParameterError, match="unset"):
        f.is_satisfied_by([1])
    with pytest.raises(ParameterError, match="both true and false"):
        f.is_satisfied_by([1, -1, 2])
    with pytest.raises(ParameterError, match="out of range"):
        f.is_satisfied_by([1, 3])


clause = st.lists(st.integers(1, 6).flatmap(lambda v: st.sampled_from([v, -v])), max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(clause, max_size=12))
def test_brute_force_agrees_with_pysat(clauses):
    f = CNFFormula(clauses, num_vars=6)
    bf = f.brute_force_solve()
    cdcl = f.solve_cdcl()
    assert (bf is None) == (cdcl is None)
    for a in (bf, cdcl):
        if a is not None:
            assert f.is_satisfied_by(a)


def test_long_tokens_are_shown_by_their_ends_and_length():
    """Tokens up to 40 characters appear whole in the message; longer ones as 12 + 6 characters and the length."""
    exactly40 = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    with pytest.raises(DimacsError) as info:
        parse_dimacs(f"p cnf 2 1\n1 {exactly40} 0\n")
    assert str(info.value) == f"<string>:2: expected an integer literal, found '{exactly40}'"
    longer = exactly40 + "EFG"
    with pytest.raises(DimacsError) as info:
        parse_dimacs(f"p cnf 2 1\n1 {longer} 0\n")
    assert str(info.value) == "<string>:2: expected an integer literal, found 'abcdefghijkl...BCDEFG (43 characters)'"
    forty_one = exactly40 + "E"
    with pytest.raises(DimacsError) as info:
        parse_dimacs(f"p cnf 2 1\n{forty_one}\n")
    assert str(info.value) == "<string>:2: expected an integer literal, found 'abcdefghijkl...9ABCDE (41 characters)'"


def test_read_passes_the_input_cap_on(tmp_path):
    path = tmp_path / "f.cnf"
    CNFFormula([[1, -2], [2]], num_vars=2).write(path)
    size = path.stat().st_size
    assert CNFFormula.read(path, max_bytes=size).clauses == [[1, -2], [2]]
    with pytest.raises(DimacsError, match=f"^{path}: input exceeds the input cap of {size - 1} bytes; raise it"):
        CNFFormula.read(path, max_bytes=size - 1)


def test_negative_num_vars_is_named_before_the_variables():
    with pytest.raises(ParameterError, match="num_vars must be non-negative, got -1"):
        CNFFormula([], num_vars=-1)
    with pytest.raises(ParameterError, match="num_vars=2 but variable 3 occurs"):
        CNFFormula([[1, -3]], num_vars=2)
