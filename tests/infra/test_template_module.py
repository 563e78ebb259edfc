"""infra/template.py: the loader of short-form tags, resolve(), subsets and references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import template as tpl
from processor.core.errors import UnresolvedReference

pytestmark = pytest.mark.unit

SHORT_FORM = """
Parameters:
  Size: { Type: Number, Default: 7 }
  Mode: { Type: String, Default: fast }
Conditions:
  IsFast: !Equals [!Ref Mode, fast]
  IsSlow: !Not [!Condition IsFast]
Resources:
  Thing:
    Type: AWS::SQS::Queue
    Properties:
      A: !Ref Size
      B: !GetAtt Other.Arn
      C: !GetAtt Db.Endpoint.Address
      D: !Sub arn:${AWS::Partition}:s3:::${Name}-${AWS::Region}/${!Literal}
      E: !Sub
        - ${X}/${Other.Arn}
        - X: !Ref Size
      F: !Join ["-", [a, !Ref Mode]]
      G: !If [IsFast, yes-fast, !Ref AWS::NoValue]
      H: !If [IsSlow, slow, !Ref AWS::NoValue]
      I: [one, !If [IsSlow, two, !Ref AWS::NoValue]]
  Other:
    Type: AWS::Fancy::Thing
    Properties:
      Q: !Ref Thing
"""


@pytest.fixture
def short_form(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "t.yaml"
    path.write_text(SHORT_FORM)
    return tpl.load_template(path)


def test_short_form_tags_load_as_long_form(short_form: dict[str, Any]) -> None:
    p = short_form["Resources"]["Thing"]["Properties"]
    assert p["A"] == {"Ref": "Size"}
    assert p["B"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert p["C"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}
    assert p["E"] == {"Fn::Sub": ["${X}/${Other.Arn}", {"X": {"Ref": "Size"}}]}
    assert p["F"] == {"Fn::Join": ["-", ["a", {"Ref": "Mode"}]]}
    assert short_form["Conditions"]["IsSlow"] == {"Fn::Not": [{"Condition": "IsFast"}]}


def test_resolve_substitutes_refs_defaults_conditions_and_drops_no_value(
    short_form: dict[str, Any],
) -> None:
    refs = {"Other.Arn": "arn:other", "Name": "n", "AWS::Region": "eu-west-1"}
    p = short_form["Resources"]["Thing"]["Properties"]
    out = tpl.resolve({k: v for k, v in p.items() if k != "C"}, refs, short_form)
    assert out == {
        "A": "7",
        "B": "arn:other",
        "D": "arn:aws:s3:::n-eu-west-1/${Literal}",
        "E": "7/arn:other",
        "F": "a-fast",
        "G": "yes-fast",
        "I": ["one"],
    }
    with pytest.raises(UnresolvedReference, match="Db.Endpoint.Address"):
        tpl.resolve(p["C"], refs, short_form)


def test_references_and_subset_drop_what_refers_to_left_out_resources(
    short_form: dict[str, Any],
) -> None:
    thing = short_form["Resources"]["Thing"]["Properties"]
    assert tpl.references(thing) == {"Size", "Other", "Db", "Name", "Mode"}
    # Thing refers to Other (an unsupported type) so it goes too; nothing is left.
    assert tpl.subset_template(short_form, ["AWS::SQS::Queue"])["Resources"] == {}


def test_real_template_subset_keeps_the_data_plane(template: dict[str, Any]) -> None:
    sub = tpl.subset_template(
        template, ["AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::SNS::Topic", "AWS::S3::Bucket"]
    )
    assert set(sub["Resources"]) == {
        "Bucket",
        "Table",
        "Queue",
        "DeadLetterQueue",
        "InvalidationQueue",
        "InvalidationDeadLetterQueue",
        "AlertTopic",
    }
    # The queue policy is not kept, so the bucket no longer waits for it.
    assert "DependsOn" not in sub["Resources"]["Bucket"]
    assert set(sub["Outputs"]) == {
        "BucketName",
        "TableName",
        "TopicArn",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "InvalidationQueueUrl",
        "InvalidationDeadLetterQueueUrl",
    }
    assert sub["Parameters"] == template["Parameters"]
    # The original is not modified.
    assert template["Resources"]["Bucket"]["DependsOn"] == "QueuePolicy"


def test_load_template_returns_an_independent_copy() -> None:
    first = tpl.load_template()
    first["Resources"].clear()
    assert tpl.load_template()["Resources"]


def test_handlers_lists_every_function() -> None:
    assert tpl.handlers() == {
        "ProcessorFunction": "processor.entrypoints.handler.lambda_handler",
        "ApiFunction": "api.handler.lambda_handler",
        "OnDemandFunction": "processor.entrypoints.ondemand.lambda_handler",
        "FlushFunction": "processor.entrypoints.flush.lambda_handler",
    }
