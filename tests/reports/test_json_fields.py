"""The one typed reader of report documents: each read's contract, and its one-line errors
(file, schema, key path, what was found), for every schema alike."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latcli.core.errors import ExitCode
from latcli.core.sla import MetricKind
from latcli.reports.files import ReportError
from latcli.reports.json_fields import Fields

SCHEMA = "latcli.test/v1"


def _fields(obj: Any, source: str | None = None) -> Fields:
    return Fields(obj, SCHEMA, source=source)


def _message(read: Any) -> str:
    with pytest.raises(ReportError) as caught:
        read()
    text = str(caught.value)
    assert "\n" not in text and caught.value.exit_code == ExitCode.USAGE
    return text


@pytest.mark.parametrize(
    ("read", "value", "wanted"),
    [
        (Fields.text, 7, "a string"),
        (Fields.number, "1", "a number"),
        (Fields.number, True, "a number"),  # a bool is no number, though Python says it is
        (Fields.integer, 1.0, "an integer"),
        (Fields.integer, False, "an integer"),
        (Fields.flag, 0, "true or false"),
        (Fields.flag, None, "true or false"),
        (Fields.values, {}, "a list"),
        (Fields.texts, ["a", 1], "a list of strings"),
        (Fields.numbers, [1, True], "a list of numbers"),
        (Fields.counts, [], "an object of counts"),
        (Fields.child, 3, "an object"),
    ],
)
def test_a_wrong_type_is_one_line_naming_file_schema_key_and_value(
    read: Any, value: Any, wanted: str
) -> None:
    f = _fields({"outer": {"k": value}}, source="r.json").child("outer")
    got = repr(value)
    assert _message(lambda: read(f, "k")) == (
        f"r.json: not a {SCHEMA} report: outer.k: expected {wanted}, got {got}"
    )


def test_a_missing_key_says_nothing_was_found() -> None:
    f = _fields({})
    for read in (Fields.text, Fields.number, Fields.integer, Fields.flag, Fields.child):
        assert _message(lambda r=read: r(f, "k")).endswith(", got nothing")


@pytest.mark.parametrize("obj", [[], "x", None, 3, True])
def test_a_document_that_is_not_an_object_is_refused(obj: Any) -> None:
    text = _message(lambda: _fields(obj, "d.json"))
    assert text == f"d.json: not a {SCHEMA} report: the document: expected an object, got {obj!r}"


def test_without_a_source_the_message_starts_at_the_schema() -> None:
    assert _message(lambda: _fields({}).text("k")).startswith(f"not a {SCHEMA} report: k: ")


def test_values_are_kept_as_written() -> None:
    f = _fields({"n": 100, "x": 2.5, "ns": [1, 2.0]})
    assert type(f.number("n")) is int and f.number("x") == 2.5
    assert [type(v) for v in f.numbers("ns")] == [int, float]


def test_list_items_and_nested_objects_carry_their_path() -> None:
    doc = {"steps": [{"a": 1}, {"a": {"b": "x"}}]}
    steps = _fields(doc).items("steps")
    assert steps[0].integer("a") == 1
    text = _message(lambda: steps[1].child("a").integer("b"))
    assert text.endswith("steps[1].a.b: expected an integer, got 'x'")
    assert _message(lambda: _fields({"steps": [1]}).items("steps")).endswith(
        "steps[0]: expected an object, got 1"
    )


def test_counts_name_the_bad_count() -> None:
    f = _fields({"errors": {"timeout": 2, "dns": "1"}, "ok": {"timeout": 2}})
    assert f.counts("ok") == {"timeout": 2}
    assert _message(lambda: f.counts("errors")).endswith("errors.dns: expected an integer, got '1'")


def test_optional_reads_null_as_none_and_a_missing_key_only_when_allowed() -> None:
    f = _fields({"null": None, "one": 1})
    assert f.optional("null", f.integer) is None
    assert f.optional("one", f.integer) == 1
    assert f.optional("gone", f.integer, missing_ok=True) is None
    assert _message(lambda: f.optional("gone", f.integer)).endswith(
        "gone: expected a value or null, got nothing"
    )


def test_default_covers_a_missing_key_and_null_only_when_asked() -> None:
    f = _fields({"null": None, "zero": 0})
    assert f.default("gone", f.integer, 5) == 5
    assert f.default("zero", f.integer, 5) == 0  # a falsy value is a value
    assert f.default("null", f.integer, 5, null=True) == 5
    assert _message(lambda: f.default("null", f.integer, 5)).endswith(
        "null: expected an integer, got None"
    )


def test_choice_returns_the_allowed_value_and_lists_them_when_not() -> None:
    f = _fields({"kind": "rate", "bad": "speed"})
    assert f.choice("kind", tuple(MetricKind)) is MetricKind.RATE
    text = _message(lambda: f.choice("bad", tuple(MetricKind)))
    assert "bad: expected one of latency, " in text and text.endswith("got 'speed'")


def _hook(value: Any) -> int:
    if value == "key":
        raise KeyError("encoded")
    if value == "inf":
        return int(float("inf"))  # OverflowError
    return int(value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("key", "missing field 'encoded'"),
        ("inf", "cannot convert float infinity to integer"),
        ("x", "invalid literal for int() with base 10: 'x'"),
        ([], "int() argument must be a string"),
    ],
)
def test_a_parse_hooks_failure_is_one_line_naming_the_key(value: Any, why: str) -> None:
    f = _fields({"h": value, "list": [1, value]}, source="r.json")
    assert _message(lambda: f.parsed("h", _hook)).startswith(
        f"r.json: not a {SCHEMA} report: h: {why}"
    )
    assert f"list[1]: {why}" in _message(lambda: f.each("list", _hook))


def test_a_parse_hook_is_told_of_a_missing_key_with_what_was_wanted() -> None:
    text = _message(lambda: _fields({}).parsed("h", _hook, "an encoded histogram"))
    assert text.endswith("h: expected an encoded histogram, got nothing")


def test_a_long_value_is_cut_short() -> None:
    text = _message(lambda: _fields({"k": ["x" * 500]}).text("k"))
    assert len(text) < 120


def test_error_names_a_problem_of_the_callers_own() -> None:
    f = _fields({"knee": {"index": 9}}, source="c.json").child("knee")
    assert str(f.error("9 is not a step", "index")) == (
        f"c.json: not a {SCHEMA} report: knee.index: 9 is not a step"
    )
    assert str(_fields({}).error("the plan: bad")) == f"not a {SCHEMA} report: the plan: bad"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@given(value=JSON)
def test_any_value_reads_or_is_one_report_error(value: Any) -> None:
    """No read lets a JSON value past as another exception (DESIGN §7: untrusted input)."""
    f = _fields({"k": value})
    for read in (
        Fields.text, Fields.number, Fields.integer, Fields.flag, Fields.child, Fields.items,
        Fields.texts, Fields.numbers, Fields.counts, Fields.present,
    ):  # fmt: skip
        try:
            read(f, "k")
        except ReportError as exc:
            assert str(exc).startswith(f"not a {SCHEMA} report: k")
