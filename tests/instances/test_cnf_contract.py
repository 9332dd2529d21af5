"""Contract of CNFFormula beyond test_cnf.py: defaults, boundary sizes, whole error messages, default source."""

import re

import pytest

from instances.cnf import CNFFormula
from instances.errors import DimacsError, ParameterError


def _exact(msg):
    return "^" + re.escape(msg) + "$"


def test_formulas_without_variables_have_zero_variables():
    for f in (CNFFormula([]), CNFFormula([[]]), CNFFormula([], num_vars=0), CNFFormula([[], []], num_vars=0)):
        assert f.num_vars == 0
    assert CNFFormula([]).brute_force_solve() == []  # the empty assignment satisfies the empty conjunction
    assert CNFFormula([[]]).brute_force_solve() is None  # an empty clause is false
    assert CNFFormula([], num_vars=2).num_vars == 2


def test_literal_zero_and_small_num_vars_are_refused_with_whole_messages():
    with pytest.raises(ParameterError, match=_exact(
            "a clause contains the literal 0, which DIMACS reserves as the clause terminator")):
        CNFFormula([[1, 0]])
    with pytest.raises(ParameterError, match=_exact("num_vars=2 but variable 4 occurs in a clause")):
        CNFFormula([[4]], num_vars=2)


def test_from_dimacs_names_the_string_source_by_default():
    with pytest.raises(DimacsError, match=_exact(
            "<string>: no 'p cnf NVARS NCLAUSES' header found (empty or not a DIMACS CNF file)")):
        CNFFormula.from_dimacs("c only a comment\n")
    with pytest.raises(DimacsError, match=_exact("<string>:2: expected an integer literal, found 'x'")):
        CNFFormula.from_dimacs("p cnf 2 1\n1 x 0\n")
    with pytest.raises(DimacsError, match=_exact("in.cnf:2: expected an integer literal, found 'x'")):
        CNFFormula.from_dimacs("p cnf 2 1\n1 x 0\n", source="in.cnf")


def test_assignment_values_table_and_whole_messages():
    from instances.cnf import assignment_values

    assert assignment_values([1, -2], 2) == [None, True, False]  # index 0 unused, exactly num_vars + 1 entries
    assert assignment_values([-2, 1, 1, -2], 2) == [None, True, False]  # repeating a literal is not a conflict
    assert assignment_values([], 0) == [None]
    with pytest.raises(ParameterError, match=_exact("assignment leaves 1 variable(s) unset, e.g. 1")):
        assignment_values([2], 2)
    with pytest.raises(ParameterError, match=_exact("assignment leaves 2 variable(s) unset, e.g. 2")):
        assignment_values([-1], 3)
    with pytest.raises(ParameterError, match=_exact("assignment literal 3 is out of range 1..2")):
        assignment_values([1, 3], 2)
    with pytest.raises(ParameterError, match=_exact("assignment sets variable 1 both true and false")):
        assignment_values([1, -1], 1)


def test_integer_tokens_keep_their_value_whatever_the_leading_zeros():
    from instances.cnf import parse_dimacs

    # 5000 leading zeros: past Python's 4300-digit int() limit unless the zeros are stripped first
    zeros = "0" * 5000
    assert parse_dimacs(f"p cnf {zeros}10 1\n{zeros}10 -{zeros}2 0\n") == (10, [[10, -2]])


def test_read_formula_from_pysat_takes_the_larger_of_nv_and_the_largest_variable():
    from pysat.formula import CNF

    from instances.cnf import read_formula

    c = CNF(from_clauses=[[1, -3]])
    c.nv = 5
    f = read_formula(c)
    assert f.num_vars == 5 and f.clauses == [[1, -3]]
    c.nv = 0
    assert read_formula(c).num_vars == 3
    assert read_formula(CNF()).num_vars == 0 and read_formula(CNF()).clauses == []


def test_byte_order_mark_only_at_the_start_and_only_ascii_whitespace_separates():
    from instances.cnf import parse_dimacs

    assert parse_dimacs("\ufeffp cnf 1 1\n1 0\n") == (1, [[1]])
    with pytest.raises(DimacsError, match=_exact(
            "<string>:1: expected the header 'p cnf NVARS NCLAUSES' before the first clause")):
        parse_dimacs("XXp cnf 0 0\n")
    # a no-break space is not a separator, at the end of a clause line or of the header
    with pytest.raises(DimacsError, match=_exact("<string>:2: expected an integer literal, found '\\xa01'")):
        parse_dimacs("p cnf 2 1\n\u00a01 2 0\n")
    with pytest.raises(DimacsError, match=_exact("<string>:2: expected an integer literal, found '0\\xa0'")):
        parse_dimacs("p cnf 2 1\n1 2 0\u00a0\n")
    with pytest.raises(DimacsError, match=_exact(
            "<string>:1: expected integers in header 'p cnf NVARS NCLAUSES', found 'p cnf 1 1\\xa0'")):
        parse_dimacs("p cnf 1 1\u00a0\n1 0\n")
    with pytest.raises(DimacsError, match=_exact(
            "<string>:1: expected header 'p cnf NVARS NCLAUSES', found 'p cnf 1 1 é'")):
        parse_dimacs("p cnf 1 1 é\n1 0\n")


def test_solve_cdcl_returns_a_full_satisfying_assignment_or_none():
    f = CNFFormula([[-1], [-2, 3], [-3, -1], [2]], num_vars=5)  # forces -1, 2, 3; variables 4 and 5 are unused
    got = f.solve_cdcl()
    assert [abs(lit) for lit in got] == [1, 2, 3, 4, 5] and f.is_satisfied_by(got)
    assert got[:3] == [-1, 2, 3] and got[3:] == [4, 5]  # an unused variable is reported true
    assert CNFFormula([[-1], [-2]]).solve_cdcl() == [-1, -2]
    assert CNFFormula([[1], [-1]]).solve_cdcl() is None
    assert CNFFormula([[1, 2], [-1, -2], [1, -2], [-1, 2]]).solve_cdcl() is None
    assert CNFFormula([], num_vars=2).solve_cdcl() == [1, 2]
    assert CNFFormula([]).solve_cdcl() == []


def test_brute_force_limit_is_refused_before_allocating_with_the_whole_message():
    from instances.cnf import BRUTE_FORCE_MAX_VARS

    with pytest.raises(ParameterError, match=_exact(
            f"brute force is limited to {BRUTE_FORCE_MAX_VARS} variables, formula has {BRUTE_FORCE_MAX_VARS + 1}")):
        CNFFormula([[1]], num_vars=BRUTE_FORCE_MAX_VARS + 1).brute_force_solve()


def test_header_and_literal_digit_limits_and_messages_at_the_boundary():
    from instances.cnf import MAX_INT_DIGITS, parse_dimacs

    assert parse_dimacs("p cnf 0 0\n") == (0, [])
    assert parse_dimacs("p cnf 1 0\n") == (1, [])
    assert parse_dimacs("p cnf 0 1\n0\n") == (0, [[]])
    top = "9" * MAX_INT_DIGITS  # exactly the limit: a count, not too large
    with pytest.raises(DimacsError, match=_exact(f"f.cnf:1: header declares {top} clauses but the file contains 0")):
        parse_dimacs(f"p cnf 1 {top}\n", "f.cnf")
    big = "1" + "0" * MAX_INT_DIGITS
    for header in (f"p cnf {big} 0", f"p cnf 1 {big}"):
        with pytest.raises(DimacsError, match=_exact(
                f"f.cnf:1: header count {big} is too large (more than {MAX_INT_DIGITS} digits)")):
            parse_dimacs(header + "\n", "f.cnf")
    for lit in (top, big):
        with pytest.raises(DimacsError, match=_exact(
                f"f.cnf:2: literal {lit} is out of range: the header declares 1 variables")):
            parse_dimacs(f"p cnf 1 1\n{lit} 0\n", "f.cnf")
    with pytest.raises(DimacsError, match=_exact(
            "f.cnf:4: clause is not terminated by 0 before the end of the file")):
        parse_dimacs("p cnf 2 2\n1 0\n\n2\n-1\n", "f.cnf")


# \x1c-\x1f are whitespace to Python's str.split/str.strip but not to DIMACS; \x01, \x7f and NEL (\x85) are other
# control characters. Each (text, line, token shown) must fail the same way on an ASCII line and on a line that
# also holds a non-ASCII character (after the bad token, so the first error is the control character's).
_CONTROL_CASES = [(f"p cnf 2 1\n1{c}2 0{tail}\n", 2, f"1{c}2") for c in "\x1c\x1d\x1e\x1f\x01\x7f\x85"
                  for tail in ("", " \u00e9")]
_CONTROL_CASES += [(f"p cnf 2 1\n{c}1 2 0{tail}\n", 2, f"{c}1") for c in "\x1c\x1f" for tail in ("", " \u00e9")]
_CONTROL_CASES += [(f"p cnf 2 1\n1 2 0{c}{tail}\n", 2, f"0{c}") for c in "\x1d\x1e" for tail in ("", " \u00e9")]
_CONTROL_CASES += [(f"p cnf 2 1\n1 2 0\n{c}{tail}\n", 3, c) for c in "\x1c\x1f" for tail in ("", " \u00e9")]


@pytest.mark.parametrize(("text", "line", "token"), _CONTROL_CASES)
def test_control_characters_are_not_separators_on_ascii_or_non_ascii_lines(text, line, token, tmp_path):
    from instances.cnf import parse_dimacs, read_formula

    shown = repr(token)
    with pytest.raises(DimacsError, match=_exact(f"<string>:{line}: expected an integer literal, found {shown}")):
        parse_dimacs(text)
    with pytest.raises(DimacsError, match=_exact(f"in.cnf:{line}: expected an integer literal, found {shown}")):
        CNFFormula.from_dimacs(text, source="in.cnf")
    path = tmp_path / "ctl.cnf"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(DimacsError, match=_exact(f"{path}:{line}: expected an integer literal, found {shown}")):
        read_formula(path)
    with pytest.raises(DimacsError, match=_exact(f"{path}:{line}: expected an integer literal, found {shown}")):
        CNFFormula.read(str(path))


def test_control_characters_in_the_header_are_refused_and_in_comments_allowed():
    from instances.cnf import parse_dimacs

    for line in ("p\x1fcnf 2 1", "p\x1fcnf 2 1 \u00e9"):  # one token "p\x1fcnf", not "p" and "cnf"
        with pytest.raises(DimacsError, match=_exact(
                f"<string>:1: expected header 'p cnf NVARS NCLAUSES', found {line!r}")):
            parse_dimacs(line + "\n1 2 0\n")
    for line in ("p cnf 2 1\x1c1", "p cnf 2 1\x1c\u00e9"):  # four tokens, the last not an integer
        with pytest.raises(DimacsError, match=_exact(
                f"<string>:1: expected integers in header 'p cnf NVARS NCLAUSES', found {line!r}")):
            parse_dimacs(line + "\n1 2 0\n")
    # a control character in a comment is harmless, and the rest of such a text (which takes the regex path
    # instead of str.split) still splits at every DIMACS whitespace: space, tab, \v, \f and a trailing \r
    text = "c a\x1fb\x01\u00e9\np cnf 3 2\r\n1\t-2\x0b0\x0c3 \r\n -1 0\n"
    assert parse_dimacs(text) == parse_dimacs(text.replace("\x1f", "")) == (3, [[1, -2], [3, -1]])


@pytest.mark.parametrize("tail", ["", " \u00e9"])
def test_cli_chain_refuses_a_control_character_with_one_line(tail, tmp_path):
    import os
    import subprocess
    from pathlib import Path

    path = tmp_path / "ctl.cnf"
    path.write_bytes(f"p cnf 2 1\n1\x1f2 0{tail}\n".encode())
    # PYTHONPATH: the console script runs this tree's code, whichever checkout pip installed in editable mode
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(["finegrained", "chain", str(path), "--no-cdcl"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"finegrained: error: {path}:2: expected an integer literal, found '1\\x1f2'"]
