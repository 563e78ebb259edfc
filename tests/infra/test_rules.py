"""The template's Rules, evaluated as CloudFormation does: Ref and the rule functions only."""

from __future__ import annotations

from typing import Any

import pytest

from infra import template as tpl
from processor.core.errors import UnresolvedReference
from tests.fakes.deploy import run
from tests.infra.test_deploy import NoAws, NoDocker

pytestmark = pytest.mark.unit


def _functions(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_functions(v) for v in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {k for k in node if k.startswith("Fn::") or k == "Ref"}
    return found.union(*(_functions(v) for v in node.values()))


def test_rules_use_only_what_cloudformation_allows_in_a_rule(template: dict[str, Any]) -> None:
    used = _functions(template["Rules"])
    assert used, "no rule functions found"
    assert used <= tpl.RULE_FUNCTIONS | {"Ref"}, used - tpl.RULE_FUNCTIONS


def test_a_function_rules_do_not_allow_is_refused_not_evaluated() -> None:
    template = {
        "Parameters": {"A": {"Type": "CommaDelimitedList", "Default": ""}},
        "Rules": {
            "R": {
                "Assertions": [
                    {
                        "Assert": {
                            "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "A"}]}, ""]}]
                        }
                    }
                ]
            }
        },
    }
    with pytest.raises(UnresolvedReference, match="Fn::Join is not allowed in a Rule"):
        tpl.rule_violations({}, template)


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        ("Fn::Contains", [["a", "b"], "b"], True),
        ("Fn::Contains", [["a", "b"], "c"], False),
        ("Fn::EachMemberEquals", [["x", "x"], "x"], True),
        ("Fn::EachMemberEquals", [["x", ""], "x"], False),
        ("Fn::EachMemberIn", [["a", "b"], ["a", "b", "c"]], True),
        ("Fn::EachMemberIn", [["a", "d"], ["a", "b", "c"]], False),
        ("Fn::Equals", ["1", "1"], True),
    ],
)
def test_rule_functions(function: str, args: list[Any], expected: bool) -> None:
    template = {"Rules": {"R": {"Assertions": [{"Assert": {function: args}}]}}}
    assert (tpl.rule_violations({}, template) == []) is expected


@pytest.mark.parametrize(
    ("audience", "allowed"), [("", False), ("client-1", True), ("client-1,client-2", True)]
)
def test_an_issuer_needs_an_audience(
    template: dict[str, Any], audience: str, allowed: bool
) -> None:
    broken = tpl.rule_violations(
        {"JwtIssuer": "https://issuer.example", "JwtAudience": audience}, template
    )
    assert (broken == []) is allowed, broken
    assert tpl.rule_violations({"JwtIssuer": "", "JwtAudience": audience}, template) == []


def test_dry_run_refuses_what_the_rules_refuse(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["deploy", "--dry-run", "--tag", "abc1234", "--parameter"]
    code, _ = run(
        [*argv, "JwtIssuer=https://issuer.example"],
        NoDocker(),
        session_factory=lambda profile, region: NoAws(),
    )
    assert code == 1
    assert "JwtIssuer needs JwtAudience" in capsys.readouterr().err
    code, out = run(
        [*argv, "ReservedConcurrency=10", "--parameter", "MaxConcurrency=10"],
        NoDocker(),
        session_factory=lambda profile, region: NoAws(),
    )
    assert code == 0
    assert "the template's Rules accept these parameters" in out
