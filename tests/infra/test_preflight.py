"""The deploy's decisions before it changes anything, as pure functions of what it read."""

from __future__ import annotations

from typing import Any

import pytest

from infra import template as tpl
from infra.deploy import preflight
from infra.deploy.leftovers import Leftover, leftovers_message
from infra.deploy.stack import failure_report

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        ("ap-south-1", {"AWS_REGION": "eu-west-1"}, ("ap-south-1", "--region")),
        (
            None,
            {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"},
            ("eu-west-1", "AWS_REGION"),
        ),
        (None, {"AWS_DEFAULT_REGION": "us-east-1"}, (None, "AWS_DEFAULT_REGION")),
        (None, {"AWS_REGION": ""}, (None, "the AWS profile")),
    ],
)
def test_region_comes_from_the_option_then_aws_region_then_botocore(
    option: str | None, environ: dict[str, str], expected: tuple[str | None, str]
) -> None:
    choice = preflight.choose_region(option, environ)
    assert (choice.region, choice.source) == expected


def _event(
    logical_id: str, status: str, reason: str = "", kind: str = "AWS::S3::Bucket"
) -> dict[str, Any]:
    return {
        "LogicalResourceId": logical_id,
        "ResourceType": kind,
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
    }


STACK = "AWS::CloudFormation::Stack"


def test_failure_report_shows_the_cause_first_and_only_of_the_latest_operation() -> None:
    chronological = [
        _event("imgpipe", "CREATE_IN_PROGRESS", "User Initiated", STACK),
        _event("Bucket", "CREATE_FAILED", "imgpipe-1-eu-west-1 already exists"),  # earlier try
        _event("imgpipe", "ROLLBACK_COMPLETE", "", STACK),
        _event("imgpipe", "CREATE_IN_PROGRESS", "User Initiated", STACK),
        _event("Table", "CREATE_COMPLETE", kind="AWS::DynamoDB::Table"),
        _event(
            "Distribution",
            "CREATE_FAILED",
            "account must be verified",
            "AWS::CloudFront::Distribution",
        ),
        _event(
            "ProcessorFunction",
            "CREATE_FAILED",
            "Resource creation cancelled",
            "AWS::Lambda::Function",
        ),
        _event(
            "Dashboard",
            "CREATE_FAILED",
            "Resource creation cancelled",
            "AWS::CloudWatch::Dashboard",
        ),
        _event("imgpipe", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed", STACK),
        _event("Table", "DELETE_COMPLETE", kind="AWS::DynamoDB::Table"),
        _event("imgpipe", "ROLLBACK_COMPLETE", "", STACK),
    ]
    newest_first = list(reversed(chronological))
    assert failure_report(newest_first) == [
        "  Distribution (AWS::CloudFront::Distribution) CREATE_FAILED: account must be verified",
        "  then cancelled: ProcessorFunction, Dashboard",
    ]


def test_failure_report_of_an_update_lists_every_real_failure_in_order() -> None:
    newest_first = list(
        reversed(
            [
                _event("imgpipe", "UPDATE_IN_PROGRESS", "User Initiated", STACK),
                _event(
                    "ApiFunction",
                    "UPDATE_FAILED",
                    "image architecture mismatch",
                    "AWS::Lambda::Function",
                ),
                _event("Queue", "UPDATE_FAILED", "throttled", "AWS::SQS::Queue"),
                _event("imgpipe", "UPDATE_ROLLBACK_COMPLETE", "", STACK),
            ]
        )
    )
    report = failure_report(newest_first)
    assert [line.split()[0] for line in report] == ["ApiFunction", "Queue"]


NEW = preflight.AccountConcurrency(limit=10, unreserved=10)
BIG = preflight.AccountConcurrency(limit=1000, unreserved=1000)


@pytest.mark.parametrize(
    ("account", "values", "chosen", "reserved_now", "changes", "refusal"),
    [
        (BIG, {"MaxConcurrency": "10"}, set(), 0, {}, None),
        (NEW, {"MaxConcurrency": "10"}, set(), 0, {"MaxConcurrency": "5"}, None),
        (NEW, {"MaxConcurrency": "10"}, {"MaxConcurrency"}, 0, None, "at most half (5)"),
        (NEW, {"MaxConcurrency": "5"}, {"MaxConcurrency"}, 0, {}, None),
        (preflight.AccountConcurrency(3, 3), {"MaxConcurrency": "10"}, set(), 0, None, "too few"),
        # A reservation must leave Lambda's 100 unreserved.
        (NEW, {"MaxConcurrency": "10", "ReservedConcurrency": "10"}, set(), 0, None, "0 can be"),
        (BIG, {"MaxConcurrency": "10", "ReservedConcurrency": "10"}, set(), 0, {}, None),
        (
            preflight.AccountConcurrency(1000, 100),
            {"MaxConcurrency": "10", "ReservedConcurrency": "10"},
            set(),
            10,  # the stack's own reservation is already out of the unreserved figure
            {},
            None,
        ),
    ],
)
def test_concurrency_fits_the_account_or_is_refused(
    account: preflight.AccountConcurrency,
    values: dict[str, str],
    chosen: set[str],
    reserved_now: int,
    changes: dict[str, str] | None,
    refusal: str | None,
) -> None:
    if refusal:
        with pytest.raises(
            preflight.DeployError, match=refusal.replace("(", r"\(").replace(")", r"\)")
        ):
            preflight.fit_concurrency(account, values, chosen=chosen, reserved_now=reserved_now)
        return
    fit = preflight.fit_concurrency(account, values, chosen=chosen, reserved_now=reserved_now)
    assert fit.changes == changes
    assert fit.note


def test_effective_parameters_layer_ours_over_previous_over_defaults() -> None:
    defaults = {"A": "1", "B": "2", "C": None, "D": "4"}
    previous = {"B": "20", "C": "30", "Gone": "x"}
    assert preflight.effective_parameters({"D": "40"}, defaults, previous) == {
        "A": "1",
        "B": "20",
        "C": "30",
        "D": "40",
    }
    assert preflight.effective_parameters({}, defaults, None) == {"A": "1", "B": "2", "D": "4"}


@pytest.mark.parametrize(
    ("upload", "storage"),
    [(1, 513), (209_715_200, 932), (2_000_000_000, 4512), (4_864_000_000, 10240)],
)
def test_ephemeral_storage_holds_an_upload_per_image_at_once(upload: int, storage: int) -> None:
    # Two images in flight (IMGPIPE_IMAGES_AT_ONCE's default) spool two uploads at once.
    assert preflight.IMAGES_AT_ONCE == 2
    assert preflight.ephemeral_storage_mb(upload) == storage
    headroom = storage * 1_000_000 - upload * preflight.IMAGES_AT_ONCE
    assert headroom >= preflight.EPHEMERAL_HEADROOM_MB * 1_000_000


def test_leftovers_message_says_what_to_run_for_each() -> None:
    message = leftovers_message(
        "imgpipe",
        "eu-west-1",
        [
            Leftover("bucket", "imgpipe-1-eu-west-1", empty=True),
            Leftover("table", "imgpipe-Table-X", empty=False),
        ],
    )
    assert "aws s3api delete-bucket --bucket imgpipe-1-eu-west-1 --region eu-west-1" in message
    assert "aws dynamodb delete-table --table-name imgpipe-Table-X --region eu-west-1" in message
    assert "table imgpipe-Table-X (NOT empty" in message
    assert "--stack-name" in message


def test_the_template_rule_is_what_fit_concurrency_assumes() -> None:
    # fit_concurrency accepts any reservation that fits; the template's rule then requires it
    # to equal MaxConcurrency. Both are checked by the deploy before building.
    assert tpl.rule_violations({"ReservedConcurrency": "0", "MaxConcurrency": "7"}) == []
    assert tpl.rule_violations({"ReservedConcurrency": "7", "MaxConcurrency": "7"}) == []
    assert tpl.rule_violations({"ReservedConcurrency": "8", "MaxConcurrency": "7"}) != []


@pytest.mark.parametrize(
    ("status", "command"),
    [
        ("ROLLBACK_FAILED", "aws cloudformation delete-stack --stack-name imgpipe"),
        ("DELETE_FAILED", "aws cloudformation delete-stack --stack-name imgpipe"),
        ("UPDATE_ROLLBACK_FAILED", "aws cloudformation continue-update-rollback"),
        ("CREATE_COMPLETE", None),
        ("ROLLBACK_COMPLETE", None),  # the deploy deletes and recreates this one itself
        ("UPDATE_ROLLBACK_COMPLETE", None),
    ],
)
def test_a_stuck_stack_gets_the_command_that_frees_it(status: str, command: str | None) -> None:
    advice = preflight.stuck_stack_advice(status, "imgpipe", "eu-west-1")
    if command is None:
        assert advice is None
    else:
        assert advice is not None and command in advice and "--region eu-west-1" in advice
