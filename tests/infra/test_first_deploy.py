"""`make deploy` against the embedded AWS (moto's server, over HTTP) as a new account meets it.

The command runs as users run it: a boto3 session from the environment (AWS_ENDPOINT_URL points
it at moto), the region from AWS_REGION or --region. Docker is the recording ``FakeBuilder`` and
the account's concurrency comes from a reader passed in: moto implements neither Docker nor
lambda:GetAccountSettings.

moto's CloudFormation creates a stack in one call and never rolls back, so ``FailFirstCreate``
adds what CloudFormation does when a resource fails during a create: the failure events (the
cause, then "Resource creation cancelled" for the rest), the rollback, which deletes every
resource except those whose DeletionPolicy is Retain (moto's own deletion rule, which is also
CloudFormation's for a rollback), and the ROLLBACK_COMPLETE status.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import template as tpl
from infra.deploy import preflight
from infra.deploy.cli import _session
from infra.deploy.leftovers import Leftover, find_leftovers, leftovers_message
from tests.infra.conftest import ACCOUNT, MOTO_STAND_INS, MOTO_TYPES
from tests.infra.test_deploy import FakeBuilder, run

pytestmark = pytest.mark.integration

CAUSE = "Your account must be verified before you can add new CloudFront resources."
EMAIL = "ops@example.com"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 and a free port, in this process (unlike the local stack's
    EmbeddedAws): FailFirstCreate reaches into its CloudFormation state."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    server._server.server_close()  # stop() ends serve_forever but leaves the socket open


@pytest.fixture
def embedded_aws(moto_server: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto server; every boto3 client made from the environment talks to it."""
    reset = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=30).close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # what botocore alone would use
    yield moto_server


def _moto_template(tmp_path: Path, deletion_policy: str | None = None) -> Path:
    """What moto's CloudFormation can create; ``deletion_policy`` overrides the stateful
    resources' one (the template had Retain before RetainExceptOnCreate)."""
    template = tpl.subset_template(tpl.load_template(), MOTO_TYPES, MOTO_STAND_INS)
    if deletion_policy:
        for logical_id in ("Bucket", "Table"):
            template["Resources"][logical_id]["DeletionPolicy"] = deletion_policy
    path = tmp_path / f"moto-template-{deletion_policy or 'current'}.json"
    path.write_text(json.dumps(template))
    return path


class FailFirstCreate:
    """A session factory whose first CreateStack ends as CloudFormation ends a failed create."""

    def __init__(self) -> None:
        self.failed = 0

    def __call__(self, profile: str | None, region: str | None) -> Any:
        session = _session(profile, region)
        session.events.register("after-call.cloudformation.CreateStack", self._roll_back)
        return session

    def _roll_back(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        if self.failed or "StackId" not in parsed:
            return
        self.failed += 1
        from moto.cloudformation.models import Event, cloudformation_backends
        from moto.cloudformation.parsing import OutputMap

        stack_id = parsed["StackId"]  # arn:aws:cloudformation:<region>:<account>:stack/...
        stack = cloudformation_backends[ACCOUNT][stack_id.split(":")[3]].stacks[stack_id]
        for logical_id, kind, reason in (
            ("Distribution", "AWS::CloudFront::Distribution", CAUSE),
            ("ProcessorFunction", "AWS::Lambda::Function", "Resource creation cancelled"),
            ("Dashboard", "AWS::CloudWatch::Dashboard", "Resource creation cancelled"),
        ):
            stack.events.append(
                Event(
                    stack_id=stack.stack_id,
                    stack_name=stack.name,
                    logical_resource_id=logical_id,
                    physical_resource_id="",
                    resource_type=kind,
                    resource_status="CREATE_FAILED",
                    resource_status_reason=reason,
                    resource_properties=None,
                )
            )
        stack._add_stack_event(
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [Distribution, ProcessorFunction, "
            "Dashboard]. Rollback requested by user.",
        )
        stack.resource_map.delete()
        # A rolled-back stack has no outputs; moto's would create their resources again (its
        # resource map is lazy).
        stack.output_map = OutputMap(stack.resource_map, {"Outputs": {}}, stack.stack_id)
        stack._add_stack_event("ROLLBACK_COMPLETE")
        stack.status = "ROLLBACK_COMPLETE"


def _deploy(template: Path, *extra: str, **kwargs: Any) -> tuple[int, str, FakeBuilder]:
    builder = kwargs.pop("builder", None) or FakeBuilder()
    argv = ["deploy", "--tag", "abc1234", "--alert-email", EMAIL, "--template", str(template)]
    code, out = run([*argv, *extra], builder, **kwargs)
    return code, out, builder


def _stack(region: str, name: str = "imgpipe") -> dict[str, Any] | None:
    cfn = boto3.client("cloudformation", region_name=region)
    try:
        (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return stack


def _parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


# ------------------------------------------------------------------ recoverable failures -----


@pytest.mark.slow
def test_a_failed_first_create_leaves_nothing_behind_and_the_retry_succeeds(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = _moto_template(tmp_path)
    sessions = FailFirstCreate()

    # GIVEN a first create that fails the way a new account's does (CloudFront unverified)
    code, out, _ = _deploy(template, session_factory=sessions)
    err = capsys.readouterr().err

    # THEN the cause comes first, the cancelled resources after it
    assert code == 1 and sessions.failed == 1
    assert f"Distribution (AWS::CloudFront::Distribution) CREATE_FAILED: {CAUSE}" in err
    assert err.index(CAUSE) < err.index("then cancelled: ProcessorFunction, Dashboard")
    assert "Resource creation cancelled" not in err
    # and the account and region were printed before anything changed
    target = "target       account 123456789012, region eu-west-1 (from AWS_REGION)"
    assert out.splitlines()[0] == target
    # and RetainExceptOnCreate removed the bucket and the table with the rollback
    s3 = boto3.client("s3", region_name="eu-west-1")
    assert s3.list_buckets()["Buckets"] == []
    assert boto3.client("dynamodb", region_name="eu-west-1").list_tables()["TableNames"] == []

    # WHEN the deploy runs again
    code, out, builder = _deploy(template, session_factory=sessions)

    # THEN it says why the last create failed, replaces the failed stack and succeeds
    assert code == 0, out + capsys.readouterr().err
    assert "failed to create earlier; deleting it" in out
    assert CAUSE in out
    stack = _stack("eu-west-1")
    assert stack is not None and stack["StackStatus"] == "CREATE_COMPLETE"
    assert builder.names() == []  # the images were pushed by the first try
    # in the region AWS_REGION names, not in AWS_DEFAULT_REGION's
    assert _stack("us-east-1") is None
    assert s3.list_buckets()["Buckets"][0]["Name"] == f"imgpipe-{ACCOUNT}-eu-west-1"


def _run_printed_commands(message: str) -> list[str]:
    """Carry out the `aws ...` lines of the deploy's advice, through boto3."""
    done = []
    for line in message.splitlines():
        command = line.strip()
        if match := re.fullmatch(r"aws s3api delete-bucket --bucket (\S+) --region (\S+)", command):
            boto3.client("s3", region_name=match[2]).delete_bucket(Bucket=match[1])
        elif match := re.fullmatch(
            r"aws dynamodb delete-table --table-name (\S+) --region (\S+)", command
        ):
            boto3.client("dynamodb", region_name=match[2]).delete_table(TableName=match[1])
        else:
            continue
        done.append(command)
    return done


def test_leftovers_of_an_earlier_failed_create_stop_the_deploy_with_the_way_out(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a failed create under the old template, whose Retain kept the bucket and table
    old = _moto_template(tmp_path, deletion_policy="Retain")
    assert _deploy(old, session_factory=FailFirstCreate())[0] == 1
    capsys.readouterr()
    (table,) = boto3.client("dynamodb", region_name="eu-west-1").list_tables()["TableNames"]

    # WHEN the deploy runs again
    code, out, builder = _deploy(old)
    err = capsys.readouterr().err

    # THEN it stops before building anything and names each leftover and what to do
    assert code == 1
    assert builder.calls == []
    bucket = f"imgpipe-{ACCOUNT}-eu-west-1"
    assert f"bucket {bucket} (empty)" in err
    assert f"table {table} (empty)" in err
    assert "--stack-name" in err  # the way to keep them
    assert "stack imgpipe failed to create" in err and CAUSE in err
    assert _run_printed_commands(err) == [
        f"aws s3api delete-bucket --bucket {bucket} --region eu-west-1",
        f"aws dynamodb delete-table --table-name {table} --region eu-west-1",
    ]

    # and once the commands ran, the deploy goes through
    code, out, _ = _deploy(_moto_template(tmp_path))
    assert code == 0, out + capsys.readouterr().err
    assert _stack("eu-west-1")["StackStatus"] == "CREATE_COMPLETE"  # type: ignore[index]


def test_a_leftover_bucket_with_images_is_flagged_as_not_empty(embedded_aws: str) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    bucket = f"imgpipe-{ACCOUNT}-eu-west-1"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="raw/a.jpg", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="raw/a.jpg")  # only a version and a delete marker left
    found = find_leftovers(
        s3,
        boto3.client("dynamodb", region_name="eu-west-1"),
        bucket=bucket,
        table_prefix="imgpipe-Table-",
    )
    assert found == [Leftover("bucket", bucket, empty=False)]
    message = leftovers_message("imgpipe", "eu-west-1", found)
    assert "NOT empty" in message and f"/s3/bucket/{bucket}/empty" in message


# ------------------------------------------------------------------ region -----------------


def test_region_option_wins_over_aws_region(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _deploy(_moto_template(tmp_path), "--region", "us-west-2")
    assert code == 0, out + capsys.readouterr().err
    assert "region us-west-2 (from --region)" in out.splitlines()[0]
    assert _stack("us-west-2") is not None
    assert _stack("eu-west-1") is None and _stack("us-east-1") is None


def test_dry_run_shows_the_region_of_aws_region(embedded_aws: str) -> None:
    code, out = run(["deploy", "--dry-run", "--tag", "abc1234"], FakeBuilder())
    assert code == 0
    assert "stack        imgpipe in eu-west-1" in out


# ------------------------------------------------------------------ concurrency ------------

NEW_ACCOUNT = preflight.AccountConcurrency(limit=10, unreserved=10)


def test_a_new_accounts_quota_lowers_the_default_max_concurrency(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _deploy(_moto_template(tmp_path), account=NEW_ACCOUNT)
    assert code == 0, out + capsys.readouterr().err
    assert "MaxConcurrency lowered from 10 to 5" in out
    assert _parameters(_stack("eu-west-1"))["MaxConcurrency"] == "5"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("parameters", "account", "message"),
    [
        (["MaxConcurrency=10"], NEW_ACCOUNT, "MaxConcurrency=10"),
        (["ReservedConcurrency=10"], NEW_ACCOUNT, "Lambda keeps 100 unreserved"),
        (["ReservedConcurrency=5"], None, "ReservedConcurrency must be 0"),
        (["ProcessorEphemeralStorage=4096"], None, "set by deploy from MaxUploadBytes"),
    ],
)
def test_settings_that_would_bite_are_refused_before_building(
    embedded_aws: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    parameters: list[str],
    account: preflight.AccountConcurrency | None,
    message: str,
) -> None:
    extra = [a for p in parameters for a in ("--parameter", p)]
    kwargs = {"account": account} if account else {}
    code, _, builder = _deploy(_moto_template(tmp_path), *extra, **kwargs)
    assert code == 1
    assert message in capsys.readouterr().err
    assert builder.calls == []
    assert _stack("eu-west-1") is None


def test_without_the_quota_the_deploy_refuses_and_names_the_permission(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real reader; moto's server does not implement GetAccountSettings, as a deployer
    # without lambda:GetAccountSettings would not get it.
    code, _, builder = _deploy(
        _moto_template(tmp_path), concurrency_reader=preflight.read_account_concurrency
    )
    assert code == 1
    assert "lambda:GetAccountSettings" in capsys.readouterr().err
    assert builder.calls == []


# ------------------------------------------------------------------ /tmp and alarms ---------


def test_ephemeral_storage_follows_the_upload_limit_across_updates(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = _moto_template(tmp_path)
    code, out, _ = _deploy(template, "--parameter", "MaxUploadBytes=2000000000")
    assert code == 0, out + capsys.readouterr().err
    # (moto's Lambda ignores EphemeralStorage; the template passes the parameter to it, see
    # test_first_deploy_template.py)
    assert _parameters(_stack("eu-west-1"))["ProcessorEphemeralStorage"] == "4512"  # type: ignore[arg-type]
    # An update that does not pass the limit again keeps it, and the storage that goes with it.
    code, out, _ = _deploy(template, "--parameter", "ProcessorMemory=3008")
    assert code == 0, out + capsys.readouterr().err
    params = _parameters(_stack("eu-west-1"))  # type: ignore[arg-type]
    assert (params["MaxUploadBytes"], params["ProcessorEphemeralStorage"]) == (
        "2000000000",
        "4512",
    )


def test_the_deploy_says_when_the_alarm_e_mail_is_not_confirmed(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = _moto_template(tmp_path)
    code, out, _ = _deploy(template)
    assert code == 0, out + capsys.readouterr().err
    assert "not confirmed" in out and "Confirm subscription" in out
    # Once a subscription is confirmed (moto confirms e-mail subscriptions at once), it is quiet.
    topic = _stack("eu-west-1")["Outputs"]  # type: ignore[index]
    (arn,) = [o["OutputValue"] for o in topic if o["OutputKey"] == "TopicArn"]
    boto3.client("sns", region_name="eu-west-1").subscribe(
        TopicArn=arn, Protocol="email", Endpoint=EMAIL
    )
    code, out, _ = _deploy(template)
    assert code == 0
    assert "not confirmed" not in out


def test_a_stack_stuck_after_a_failed_rollback_gets_the_way_out_before_any_build(
    embedded_aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = _moto_template(tmp_path)
    assert _deploy(template)[0] == 0
    from moto.cloudformation.models import cloudformation_backends

    # moto cannot fail a rollback; this is the state CloudFormation leaves when it does.
    (stack,) = cloudformation_backends[ACCOUNT]["eu-west-1"].stacks.values()
    stack.status = "UPDATE_ROLLBACK_FAILED"
    code, _, builder = _deploy(template, "--tag", "def5678")
    assert code == 1
    assert "aws cloudformation continue-update-rollback" in capsys.readouterr().err
    assert builder.calls == []
