"""The schema checker that stands in for `terraform validate` (tests/terraform/provider_schema.py),
on a small schema written here in the cdktf bindings' format: it must flag an unknown argument
(also inside a dynamic block) and a missing required one, and pass a correct module."""

from __future__ import annotations

from pathlib import Path

from tests.terraform.provider_schema import check, main, provider_version

URL = "https://registry.terraform.io/providers/hashicorp/google/9.9.9/docs/resources/pubsub_topic"


def field(name: str, camel: str, type_text: str) -> str:
    return (f"  /**\n  * Docs at Terraform Registry: {{@link {URL}#{name} PubsubTopic#{name}}}\n"
            f"  */\n  readonly {camel}: {type_text};\n")


DECLARATION = (
    f"/** Docs at Terraform Registry: {{@link {URL}}} */\n"
    "export interface PubsubTopicConfig extends cdktf.TerraformMetaArguments {\n"
    + field("name", "name", "string")
    + field("project", "project?", "string")
    + field("schema_settings", "schemaSettings?", "PubsubTopicSchemaSettings")
    + "}\nexport interface PubsubTopicSchemaSettings {\n"
    + field("schema", "schema", "string")
    + field("encoding", "encoding?", "string")
    + "}\n"
)


def schema(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    (lib / "pubsub-topic").mkdir(parents=True, exist_ok=True)
    (lib / "pubsub-topic" / "index.d.ts").write_text(DECLARATION, encoding="utf-8")
    return lib


def module(tmp_path: Path, body: str) -> Path:
    directory = tmp_path / "module"
    directory.mkdir(exist_ok=True)
    (directory / "main.tf").write_text(body, encoding="utf-8")
    return directory


def test_a_module_within_the_schema_passes(tmp_path: Path) -> None:
    tf = module(tmp_path, 'resource "google_pubsub_topic" "t" {\n  name = "t"\n  count = 1\n'
                          '  schema_settings {\n    schema = "s"\n  }\n}\n')
    assert check(tf, schema(tmp_path)) == []
    assert provider_version(schema(tmp_path)) == "9.9.9"


def test_unknown_arguments_are_flagged_at_any_depth(tmp_path: Path) -> None:
    tf = module(tmp_path, 'resource "google_pubsub_topic" "t" {\n  name = "t"\n  nme = "typo"\n'
                          '  dynamic "schema_settings" {\n    for_each = [1]\n    content {\n'
                          '      schema = "s"\n      encodin = "JSON"\n    }\n  }\n}\n')
    assert check(tf, schema(tmp_path)) == [
        "google_pubsub_topic.t: unknown argument nme",
        "google_pubsub_topic.t.schema_settings: unknown argument encodin",
    ]


def test_missing_required_arguments_and_unknown_types_are_flagged(tmp_path: Path) -> None:
    tf = module(tmp_path, 'resource "google_pubsub_topic" "t" {\n  project = "p"\n'
                          '  schema_settings {\n    encoding = "JSON"\n  }\n}\n'
                          'resource "google_pubsub_topik" "u" {\n  name = "u"\n}\n')
    problems = check(tf, schema(tmp_path))
    assert "google_pubsub_topic.t: required argument name is not set" in problems
    assert "google_pubsub_topic.t.schema_settings: required argument schema is not set" in problems
    assert "google_pubsub_topik.u: no such resource type" in problems
    assert main([str(tf), str(schema(tmp_path))]) == 1
