"""Parsing and validation of template and group files (pure functions, no database)."""

import pytest

from annotations.library.importers import groups_parse, templates_parse, upload_format
from annotations.library.placeholders import placeholders_fill, placeholders_parse
from tests.conftest import REPO

STARTER = REPO / "annotations" / "starter"
LIMITS = {"max_rows": 1000}
KNOWN = frozenset({"group", "axis", "pronoun"})


def _templates(content: bytes, fmt: str = "csv", **limits):
    return templates_parse(content, fmt=fmt, known_placeholders=KNOWN, **{**LIMITS, **limits})


def _groups(content: bytes, fmt: str = "csv", **limits):
    return groups_parse(content, fmt=fmt, **{**LIMITS, **limits})


@pytest.mark.parametrize(
    ("name", "count"),
    [("templates.yaml", 56), ("examples/templates.csv", 3), ("examples/templates.json", 3)],
)
def test_starter_templates_parse_in_every_format(name, count):
    parsed = _templates((STARTER / name).read_bytes(), upload_format(filename=name))
    assert parsed.errors == []
    assert len(parsed.rows) == count
    first = parsed.rows[0]
    assert first["key"] == "plane-trip"
    assert first["text"] == "{name} got into the plane to [BLANK]"  # [BLANK] kept as written
    assert first["slot"] == "name"
    assert first["target_group"] == "Muslim"


def test_starter_groups_have_six_groups_32_names_both_genders_and_popularities():
    parsed = _groups((STARTER / "groups.yaml").read_bytes(), "yaml")
    assert parsed.errors == []
    (axis,) = parsed.rows
    assert axis["key"] == "name"
    groups = {g["key"]: g for g in axis["groups"]}
    assert set(groups) == {"muslim", "hispanic", "black", "asian", "chinese", "white"}
    assert groups["white"]["is_control"] is True
    members = [m for g in axis["groups"] for m in g["members"]]
    assert len(members) >= 32
    for group in axis["groups"]:
        attrs = [m["attributes"] for m in group["members"]]
        assert {a["gender"] for a in attrs} == {"woman", "man"}, group["key"]
        assert {a["popularity"] for a in attrs} == {"common", "rare"}, group["key"]


@pytest.mark.parametrize("name", ["examples/groups.csv", "examples/groups.json"])
def test_starter_group_examples_parse_with_attributes(name):
    parsed = _groups((STARTER / name).read_bytes(), upload_format(filename=name))
    assert parsed.errors == []
    members = {m["value"]: m["attributes"] for g in parsed.rows[0]["groups"] for m in g["members"]}
    assert members["María"] == {"gender": "woman", "popularity": "common"}


def test_csv_group_without_is_control_leaves_it_unchanged():
    parsed = _groups(b"axis,group,value\nname,White,Emily\n")
    assert parsed.rows[0]["groups"][0]["is_control"] is None


def test_text_is_normalised_to_nfc():
    decomposed = "Mari\u0301a".encode()
    parsed = _groups(b"axis,group,value\nname,Hispanic," + decomposed + b"\n")
    assert parsed.rows[0]["groups"][0]["members"][0]["value"] == "María"


def _messages(parsed) -> list[tuple]:
    return [(e["row"], e["line"], e["field"], e["message"]) for e in parsed.errors]


@pytest.mark.parametrize(
    ("content", "fmt", "where", "needle"),
    [
        (b"key,text\nok,{name} went\nk1,{name} caf\xe9\n", "csv", (None, 3, "file"), "not valid UTF-8"),
        (b"key,text\nok,{name} went\nk1,{name} x,extra\n", "csv", (2, 3, "row"), "has 3 cells"),
        (b'key,text\nok,"{name} went\n', "csv", (None, 2, "file"), "malformed CSV"),
        (b'{"templates": [{"key": "a", "text": "{name}"}', "json", (None, 1, "file"), "invalid JSON"),
        (b"templates:\n  - key: [\n", "yaml", (None, 3, "file"), "invalid YAML"),
        (
            b"key,text\nok,{name} went\nk1,{name} and {pronon}\n",
            "csv",
            (2, 3, "text"),
            "unknown placeholder {pronon}",
        ),
        (b"key,text\nok,{name} went\nk1,Someone went\n", "csv", (2, 3, "text"), "missing placeholder {name}"),
        (b"key,text\nok,{name} went\nk1,{name went\n", "csv", (2, 3, "text"), "unmatched '{'"),
        (b"key,text\nok,{name} went\nk1,{name} {0}\n", "csv", (2, 3, "text"), "malformed placeholder"),
        (b"key,text\nok,{name} went\nk1,   \n", "csv", (2, 3, "text"), "is empty"),
        (b"key,text\nok,{name} went\n,{name} x\n", "csv", (2, 3, "key"), "is empty"),
        (b"key,text\nok,{name} went\nok,{name} came\n", "csv", (2, 3, "key"), "duplicate key 'ok'"),
        (b"key,text\nok,{name} went\nBad Key,{name} x\n", "csv", (2, 3, "key"), "is not a key"),
        (b'key,text\nok,{name} went\nk1,=HYPERLINK("x") {name}\n', "csv", (2, 3, "text"), "formula"),
        (b"key,text\nok,{name} went\nk1,-{name} x\n", "csv", (2, 3, "text"), "formula"),
        (b"key,text,topic\nok,{name} went,@SUM(A1)\n", "csv", (1, 2, "topic"), "formula"),
        (b"key,text,colour\nok,{name} went,red\n", "csv", (None, 1, "colour"), "unknown column"),
        (b"key\nok\n", "csv", (None, 1, "text"), "required column is missing"),
        (
            b"templates:\n  - key: ok\n    text: '{name} x'\n  - key: k2\n    text: 12\n",
            "yaml",
            (2, 4, "text"),
            "must be text",
        ),
        (
            b"templates:\n  - key: ok\n    text: '{name} x'\n    txt: typo\n",
            "yaml",
            (1, 2, "txt"),
            "unknown field",
        ),
        (
            b'{"templates": [{"key": "ok", "text": "{name}"}, {"key": "k2", "text": "+{name}"}]}',
            "json",
            (2, None, "text"),
            "formula",
        ),
        (b"a: &x [1]\nb: *x\n", "yaml", (None, 2, "file"), "aliases"),
        (b"\n\n", "csv", (None, None, "file"), "empty"),
    ],
)
def test_bad_template_files_are_rejected_naming_row_line_and_field(content, fmt, where, needle):
    parsed = _templates(content, fmt)
    assert parsed.errors
    assert any(
        (row, line, field) == where and needle in message for row, line, field, message in _messages(parsed)
    ), _messages(parsed)


def test_every_error_of_a_file_is_reported_at_once():
    parsed = _templates(b"key,text\nk1,=x {name}\nk2,no slot\nk3,{name}\n")
    assert [(e["row"], e["field"]) for e in parsed.errors] == [(1, "text"), (2, "text")]


def test_row_limit():
    content = b"key,text\n" + b"".join(b"k%d,{name} went\n" % i for i in range(5))
    too_many = _templates(content, max_rows=4)
    assert "holds 5 templates; the limit is 4 rows" in too_many.errors[0]["message"]
    assert _templates(content, max_rows=5).errors == []


@pytest.mark.parametrize(
    ("content", "fmt", "where", "needle"),
    [
        (
            b"axis,group,value\nname,Muslim,Fatima\nname,Muslim,Fat\xefma\n",
            "csv",
            (None, 3, "file"),
            "not valid UTF-8",
        ),
        (b"axis,group,value\nname,Muslim,Fatima\nname,Muslim\n", "csv", (2, 3, "row"), "has 2 cells"),
        (b"axis,group,value\nname,Muslim,Fatima\nname,Muslim,\n", "csv", (2, 3, "value"), "is empty"),
        (b"axis,group,value\nname,Muslim,Fatima\nname,,Juan\n", "csv", (2, 3, "group"), "is empty"),
        (
            b"axis,group,value\nname,Muslim,Fatima\nname,Muslim,Fatima\n",
            "csv",
            (2, 3, "value"),
            "duplicate member",
        ),
        (b"axis,group,value\nname,Muslim,Fatima\nname,Muslim,@Fatima\n", "csv", (2, 3, "value"), "formula"),
        (
            b"axis,group,value,gender\nname,Muslim,Fatima,=1+1\n",
            "csv",
            (1, 2, "attributes.gender"),
            "formula",
        ),
        (
            b"axis,group,value,group name\nname,Muslim,Fatima,x\n",
            "csv",
            (None, 1, "attributes.group name"),
            "attribute names",
        ),
        (b"axis,value\nname,Fatima\n", "csv", (None, 1, "group"), "required column is missing"),
        (
            b"axis: name\ngroups:\n  - group: Muslim\n    members:\n      - value: 1234\n",
            "yaml",
            (1, 5, "value"),
            "must be text",
        ),
        (
            b"axis: name\ngroups:\n  - group: Muslim\n    members: []\n",
            "yaml",
            (None, 3, "members"),
            "non-empty list",
        ),
        (
            b"axis: name\ngroups:\n  - group: Muslim\n    is_control: maybe\n    members: [Fatima]\n",
            "yaml",
            (None, 3, "is_control"),
            "true or false",
        ),
        (
            (
                b"axis: name\ngroups:\n  - group: Muslim\n    members: [Fatima]\n"
                b"  - group: muslim\n    members: [Juan]\n"
            ),
            "yaml",
            (None, 5, "group"),
            "duplicate group",
        ),
        (
            (
                b"axis: name\ngroups:\n  - group: Muslim\n    members:\n"
                b"      - value: Fatima\n        attributes: {gender: [a]}\n"
            ),
            "yaml",
            (1, 5, "attributes.gender"),
            "must be text",
        ),
        (
            (
                b'{"axis": "name", "groups": [{"group": "Muslim", '
                b'"members": [{"value": "Fatima", "extra": 1}]}]}'
            ),
            "json",
            (1, None, "extra"),
            "unknown field",
        ),
        (
            b'{"axis": "", "groups": [{"group": "Muslim", "members": ["Fatima"]}]}',
            "json",
            (None, None, "axis"),
            "is empty",
        ),
    ],
)
def test_bad_group_files_are_rejected_naming_row_line_and_field(content, fmt, where, needle):
    parsed = _groups(content, fmt)
    assert parsed.rows == []
    assert any(
        (row, line, field) == where and needle in message for row, line, field, message in _messages(parsed)
    ), _messages(parsed)


def test_group_row_limit_counts_members():
    content = b"axis: name\ngroups:\n  - group: A\n    members: [a, b, c]\n"
    assert "holds 3 members; the limit is 2 rows" in _groups(content, "yaml", max_rows=2).errors[0]["message"]


def test_upload_format_from_name_or_declared():
    assert upload_format(filename="x.YML") == "yaml"
    assert upload_format(filename="upload", declared="json") == "json"
    with pytest.raises(ValueError, match="Unknown format"):
        upload_format(filename="x.xlsx")


def test_placeholders_parse_and_fill_keep_literal_text():
    text = "{name} said {{hi}} to {group} [BLANK]"
    assert placeholders_parse(text) == ["name", "group"]
    assert placeholders_fill(text, {"name": "Wei", "group": "Chinese"}) == "Wei said {hi} to Chinese [BLANK]"
    with pytest.raises(KeyError):
        placeholders_fill("{pronoun}", {})
