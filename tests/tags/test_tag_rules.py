"""The pure tag rules (bridge.tags): TAGS parsed under Mender's limits, one device's tags
rendered from its registry fields, and the change that brings Mender's tags there touching
only the bridge's own."""

from __future__ import annotations

import pytest

from bridge.errors import IdentityError
from bridge.model import RegistryDevice, RegistryRef
from bridge.tags import Tag, TagTemplate, change, replaced

REF = RegistryRef("p", "europe-west1", "fleet")
TEMPLATE = TagTemplate.parse("site={metadata[site]},registry={registry},hw=rev-{metadata[hw]}")


def device(**metadata: str) -> RegistryDevice:
    return RegistryDevice(REF, "dev-1", "123", (), metadata)


def tags(**values: object) -> dict[str, Tag]:
    return {n: Tag(n, v) for n, v in values.items()}


@pytest.mark.parametrize(("text", "problem"), [
    ("site", "not of the form"),
    ("site={metadata[1bad]}", "metadata key"),
    ("site={nope}", "unknown identity field"),
    ("a={registry},a={registry}", "appears twice"),
    ("x" * 1025 + "={registry}", "1024"),
    (",".join(f"t{i}={{registry}}" for i in range(21)), "21 tags"),
])
def test_a_template_mender_could_not_keep_is_refused(text: str, problem: str) -> None:
    with pytest.raises(IdentityError, match=problem):
        TagTemplate.parse(text)


def test_the_longest_name_and_the_most_tags_mender_keeps_are_accepted() -> None:
    assert len(TagTemplate.parse("x" * 1024 + "={registry}").names) == 1
    many = TagTemplate.parse(",".join(f"t{i}={{registry}}" for i in range(20)))
    assert len(many.names) == 20


def test_empty_text_means_no_tags() -> None:
    assert not TagTemplate.parse("  ")
    assert TEMPLATE and not TEMPLATE.uses("device.num_id") and TEMPLATE.uses("metadata")


def test_rendered_from_metadata_and_names_a_missing_key_as_absent() -> None:
    wanted = TEMPLATE.render(device(site="lab"))
    assert dict(wanted.values) == {"site": "lab", "registry": "fleet", "hw": None}
    assert wanted.problems == ()


@pytest.mark.parametrize(("value", "problem"), [
    ("\ud800lone", "not valid Unicode"),
    ("é" * 16385, "32770 bytes"),
])
def test_a_value_mender_would_not_keep_is_a_problem_and_not_a_value(value: str,
                                                                     problem: str) -> None:
    wanted = TEMPLATE.render(device(site=value, hw="2"))
    assert "site" not in wanted.values and wanted.values["hw"] == "rev-2"
    assert len(wanted.problems) == 1 and problem in wanted.problems[0]
    assert change(wanted, tags(site="old")).set == {"hw": "rev-2", "registry": "fleet"}


def test_only_what_differs_is_written_and_a_persons_tags_are_not_touched() -> None:
    wanted = TEMPLATE.render(device(site="field", hw="3"))
    current = tags(site="lab", registry="fleet", owner="alice", hw=3)
    todo = change(wanted, current)
    # hw held a number a person wrote: the bridge's tag is text, so it is written again.
    assert dict(todo.set) == {"site": "field", "hw": "rev-3"} and todo.remove == ()
    assert change(wanted, {**current, **tags(site="field", hw="rev-3")}).writes is False


def test_a_tag_whose_metadata_went_away_is_removed_and_the_rest_sent_back() -> None:
    current = {**tags(site="lab", registry="fleet", hw="rev-1"),
               "owner": Tag("owner", "alice", "who to call")}
    todo = change(TEMPLATE.render(device(site="lab")), current)
    assert todo.remove == ("hw",) and not todo.set
    after = {t.name: t for t in replaced(current, todo)}
    assert after == {k: v for k, v in current.items() if k != "hw"}


def test_a_new_tag_beyond_mender_s_limit_is_a_problem_updates_still_go() -> None:
    crowded = {f"p{i}": Tag(f"p{i}", "x") for i in range(18)} | tags(site="lab")
    todo = change(TEMPLATE.render(device(site="field", hw="1")), crowded)
    assert dict(todo.set) == {"site": "field"}
    assert any("21 tags" in p for p in todo.problems)
