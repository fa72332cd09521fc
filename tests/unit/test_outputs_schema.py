"""docs/outputs.schema.json is the output contract DNS tooling relies on: both stacks' exports (under mocks)
must satisfy it, and a renamed or unknown output must not."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "outputs.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def branch_validator(stack: str) -> Draft202012Validator:
    """A validator for one stack's branch of the oneOf, so a failure names the field, not 'not valid under any'."""
    return Draft202012Validator({"$ref": f"#/$defs/{stack}", "$defs": SCHEMA["$defs"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def problems(validator: Draft202012Validator, outputs: dict) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in validator.iter_errors(outputs)]


def examples(stack: str) -> list[dict]:
    return SCHEMA["$defs"][stack]["examples"]


def test_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_training_exports_satisfy_the_schema(run_stack):
    _, exports = run_stack("training")
    assert not problems(branch_validator("training"), exports), problems(branch_validator("training"), exports)
    assert VALIDATOR.is_valid(exports), problems(VALIDATOR, exports)


def test_production_exports_satisfy_the_schema(run_stack):
    _, exports = run_stack("production", secret_keys=())
    assert not problems(branch_validator("production"), exports), problems(branch_validator("production"), exports)
    assert VALIDATOR.is_valid(exports), problems(VALIDATOR, exports)


@pytest.mark.parametrize("stack", ["training", "production"])
def test_schema_examples_are_valid_for_their_stack_only(stack):
    other = {"training": "production", "production": "training"}[stack]
    for example in examples(stack):
        assert VALIDATOR.is_valid(example), problems(VALIDATOR, example)
        assert branch_validator(stack).is_valid(example), problems(branch_validator(stack), example)
        assert not branch_validator(other).is_valid(example), f"a {stack} example also passes as {other}"


@pytest.mark.parametrize("stack", ["training", "production"])
def test_a_renamed_output_fails_validation(stack):
    renamed = dict(examples(stack)[0])
    renamed["URL"] = renamed.pop("url")
    assert not VALIDATOR.is_valid(renamed), "renaming url to URL must break the contract"
    found = problems(branch_validator(stack), renamed)
    assert any("'URL' was unexpected" in problem for problem in found), found
    assert any("'url' is a required property" in problem for problem in found), found


def test_production_may_gain_documented_optional_outputs_only():
    production = examples("production")[0]
    with_cdn = {**production, "cdn_domain_name": "d111111abcdef8.cloudfront.net"}
    assert VALIDATOR.is_valid(with_cdn), problems(VALIDATOR, with_cdn)
    misspelt = {**production, "cdn_domain": "d111111abcdef8.cloudfront.net"}
    assert not VALIDATOR.is_valid(misspelt), "an output the schema does not document must be refused"


def test_production_dns_record_name_may_be_null_but_training_may_not():
    production = examples("production")[0]
    unnamed = {**production, "dns_record": {**production["dns_record"], "name": None}}
    assert VALIDATOR.is_valid(unnamed), problems(VALIDATOR, unnamed)
    training = examples("training")[0]
    unnamed_training = {**training, "dns_record": {**training["dns_record"], "name": None}}
    assert not VALIDATOR.is_valid(unnamed_training), "training always names its record"


@pytest.mark.parametrize("stack, field, value", [
    ("training", "port", "8080"),
    ("training", "dns_record", {"type": "A", "name": "companynews.localhost", "target": "::1"}),
    ("training", "dns_record", {"type": "ALIAS", "name": "companynews.localhost", "target": "127.0.0.1"}),
    ("production", "alb_zone_id", "not-a-zone"),
    ("production", "dns_record", {"type": "ALIAS", "name": "news.example.com",
                                  "target": "companynews-1234567890.us-east-1.elb.amazonaws.com"}),
])
def test_wrong_values_fail_validation(stack, field, value):
    broken = {**examples(stack)[0], field: value}
    assert not VALIDATOR.is_valid(broken), f"{stack} {field} = {value!r} must be refused"


def test_every_output_in_the_schema_is_documented():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", (DOCS / "outputs.md").read_text(), flags=re.MULTILINE))
    for stack in ("training", "production"):
        names = set(SCHEMA["$defs"][stack]["properties"])
        assert names <= documented, f"{stack} outputs missing from docs/outputs.md: {sorted(names - documented)}"


def test_json_examples_in_the_docs_satisfy_the_schema():
    text = (DOCS / "outputs.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "docs/outputs.md shows no example output"
    for block in blocks:
        example = json.loads(block)
        assert VALIDATOR.is_valid(example), problems(VALIDATOR, example)
