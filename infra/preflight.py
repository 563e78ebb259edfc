"""What `make deploy` finds out before it changes anything, and what it decides from that.

Each check is a pure function of what was read (the environment, the account's Lambda
concurrency, the stack's parameters, leftover resources, stack events), so the rules are
tested without AWS; the few reads are small functions that take a boto3 session or client.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from infra.errors import DeployError

# ------------------------------------------------------------------ region -----------------


@dataclass(frozen=True)
class RegionChoice:
    region: str | None  # None: let botocore decide (AWS_DEFAULT_REGION, then the profile)
    source: str


def choose_region(option: str | None, environ: Mapping[str, str]) -> RegionChoice:
    """--region, then AWS_REGION, then botocore's own choice.

    botocore reads AWS_DEFAULT_REGION and the profile but not AWS_REGION, which the AWS CLI v2,
    the SDKs of other languages and Lambda itself use: `AWS_REGION=eu-west-1 make deploy` would
    otherwise deploy wherever the profile points.
    """
    if option:
        return RegionChoice(option, "--region")
    if environ.get("AWS_REGION"):
        return RegionChoice(environ["AWS_REGION"], "AWS_REGION")
    if environ.get("AWS_DEFAULT_REGION"):
        return RegionChoice(None, "AWS_DEFAULT_REGION")
    return RegionChoice(None, "the AWS profile")


# ------------------------------------------------------------------ parameters -------------


def effective_parameters(
    ours: Mapping[str, str],
    defaults: Mapping[str, str | None],
    previous: Mapping[str, str] | None,
) -> dict[str, str]:
    """The value each parameter will have: what this deploy sets, else the stack's previous
    value (an update), else the template default."""
    values = {k: v for k, v in defaults.items() if v is not None}
    values.update(previous or {})
    values.update(ours)
    return {k: v for k, v in values.items() if k in defaults}


# The processor spools an upload to /tmp; libvips may write a temporary file of its own, and a
# stale spool may survive a timeout until the next cold start clears it.
EPHEMERAL_HEADROOM_MB = 512
EPHEMERAL_MIN_MB = 512  # Lambda's range
EPHEMERAL_MAX_MB = 10240


def ephemeral_storage_mb(max_upload_bytes: int) -> int:
    """Processor /tmp size for an upload limit (MB counted as 10^6 bytes: never too small)."""
    needed = math.ceil(max_upload_bytes / 1_000_000) + EPHEMERAL_HEADROOM_MB
    if needed > EPHEMERAL_MAX_MB:
        raise DeployError(
            f"MaxUploadBytes={max_upload_bytes} needs {needed} MB of /tmp; Lambda allows "
            f"{EPHEMERAL_MAX_MB}: use at most "
            f"{(EPHEMERAL_MAX_MB - EPHEMERAL_HEADROOM_MB) * 1_000_000}"
        )
    return max(EPHEMERAL_MIN_MB, needed)


# ------------------------------------------------------------------ concurrency ------------


@dataclass(frozen=True)
class AccountConcurrency:
    """lambda:GetAccountSettings: the account's quota and what no function has reserved."""

    limit: int
    unreserved: int


class ConcurrencyReader(Protocol):
    def __call__(self, session: Any) -> AccountConcurrency: ...


def read_account_concurrency(session: Any) -> AccountConcurrency:
    """The real reader (moto implements neither this call nor the Service Quotas one)."""
    try:
        limits = session.client("lambda").get_account_settings()["AccountLimit"]
    except Exception as e:
        if not type(e).__module__.startswith("botocore"):
            raise
        raise DeployError(
            f"cannot read the account's Lambda concurrency quota ({e}); the deployer needs "
            "lambda:GetAccountSettings (docs/deploy.md)"
        ) from e
    return AccountConcurrency(
        limit=int(limits["ConcurrentExecutions"]),
        unreserved=int(limits["UnreservedConcurrentExecutions"]),
    )


# Lambda refuses a reservation that leaves fewer than this unreserved in the account.
LAMBDA_MIN_UNRESERVED = 100
MIN_MAX_CONCURRENCY = 2  # the SQS event source's minimum


@dataclass(frozen=True)
class ConcurrencyFit:
    changes: dict[str, str]  # parameters to set (an adapted MaxConcurrency), often empty
    note: str


def fit_concurrency(
    account: AccountConcurrency,
    values: Mapping[str, str],
    *,
    chosen: Iterable[str],
    reserved_now: int = 0,
) -> ConcurrencyFit:
    """Keep the processor from taking the concurrency the API and the authoriser need.

    Unreserved, the processor shares the account's unreserved pool with the API and its
    authoriser (and whatever else runs in the account): it may take half of it. A new account
    often has a quota of 10, the default MaxConcurrency: the API would be throttled (5xx) and
    throttled SQS deliveries count as receives, so good images would reach the dead-letter
    queue. A template default is lowered to fit; a value someone chose (``chosen``) is not
    overridden: the deploy refuses and says why. ``reserved_now`` is the processor's present
    reservation (an update), which the account's unreserved figure already excludes.
    """
    maximum = int(values["MaxConcurrency"])
    reserved = int(values.get("ReservedConcurrency", "0"))
    quota = f"the account's Lambda concurrency quota is {account.limit}"
    increase = "ask for more with Service Quotas (Lambda, 'Concurrent executions'; docs/deploy.md)"
    if reserved:
        available = account.unreserved + reserved_now - LAMBDA_MIN_UNRESERVED
        if reserved > available:
            raise DeployError(
                f"ReservedConcurrency={reserved}: {quota} with {account.unreserved} unreserved, "
                f"and Lambda keeps {LAMBDA_MIN_UNRESERVED} unreserved, so at most "
                f"{max(available, 0)} can be reserved. Use ReservedConcurrency=0, or {increase}"
            )
        return ConcurrencyFit({}, f"processor reserves {reserved} of {account.limit}")
    share = (account.unreserved + reserved_now) // 2
    if maximum <= share:
        return ConcurrencyFit(
            {}, f"processor up to {maximum} of {account.unreserved} unreserved ({quota})"
        )
    if "MaxConcurrency" in set(chosen):
        raise DeployError(
            f"MaxConcurrency={maximum}: {quota} with {account.unreserved} unreserved; the "
            f"processor may take at most half ({share}) so that the API and its authoriser are "
            f"not throttled. Use --parameter MaxConcurrency={share} or lower, or {increase}"
        )
    if share < MIN_MAX_CONCURRENCY:
        raise DeployError(
            f"{quota} with {account.unreserved} unreserved: too few for the processor (at least "
            f"{MIN_MAX_CONCURRENCY}) next to the API; {increase}"
        )
    return ConcurrencyFit(
        {"MaxConcurrency": str(share)},
        f"processor MaxConcurrency lowered from {maximum} to {share}: half of the "
        f"{account.unreserved} unreserved ({quota}); {increase}",
    )


# ------------------------------------------------------------------ leftovers --------------


@dataclass(frozen=True)
class Leftover:
    kind: str  # "bucket" or "table"
    name: str
    empty: bool


def find_leftovers(s3: Any, dynamodb: Any, *, bucket: str, table_prefix: str) -> list[Leftover]:
    """Stateful resources of an earlier stack of this name that no stack owns any more.

    Only called when no stack of this name exists (or only a failed create): CloudFormation
    names the table "<stack>-Table-<suffix>", and the bucket has a fixed name.
    """
    found: list[Leftover] = []
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as e:
        status = getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 403:
            raise DeployError(
                f"the bucket name {bucket} belongs to another AWS account; choose another "
                "--stack-name"
            ) from e
        if status != 404:
            raise
    else:
        versions = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
        empty = not versions.get("Versions") and not versions.get("DeleteMarkers")
        found.append(Leftover("bucket", bucket, empty))
    for page in dynamodb.get_paginator("list_tables").paginate():
        for name in page.get("TableNames", []):
            if name.startswith(table_prefix):
                items = dynamodb.scan(TableName=name, Limit=1, Select="COUNT")["Count"]
                found.append(Leftover("table", name, items == 0))
    return found


def leftovers_message(
    stack: str, region: str, leftovers: Iterable[Leftover], failed_because: Sequence[str] = ()
) -> str:
    """What to do about them: CloudFormation cannot create a stack over them.

    ``failed_because``: the failure report of the stack's failed create, when there is one.
    """
    state = "failed to create" if failed_because else "does not exist"
    lines = [
        f"stack {stack} {state}, but an earlier create left these behind in {region}; "
        "CloudFormation cannot create the bucket over them, and each retry would leave one "
        "more table:"
    ]
    for item in leftovers:
        state = "empty" if item.empty else "NOT empty: holds images or records"
        lines.append(f"  {item.kind} {item.name} ({state})")
    lines.append("If nothing in them is worth keeping, delete them and deploy again:")
    for item in leftovers:
        if item.kind == "bucket":
            if not item.empty:
                lines.append(
                    f"  empty the bucket first (versioned: the S3 console's 'Empty' deletes "
                    f"every version): https://s3.console.aws.amazon.com/s3/bucket/{item.name}/empty"
                )
            lines.append(f"  aws s3api delete-bucket --bucket {item.name} --region {region}")
        else:
            lines.append(f"  aws dynamodb delete-table --table-name {item.name} --region {region}")
    lines.append(
        "To keep them, deploy under another --stack-name instead (the old bucket and table stay "
        "as they are)."
    )
    if failed_because:
        lines.append("The failed create's cause, to fix before the retry:")
        lines.extend(failed_because)
    return "\n".join(lines)


def stuck_stack_advice(status: str, stack: str, region: str) -> str | None:
    """What to run when the stack is in a state no create or update can leave, else None."""
    where = f"--stack-name {stack} --region {region}"
    if status == "ROLLBACK_FAILED":
        return (
            f"stack {stack} is ROLLBACK_FAILED: its failed create could not be cleaned up. "
            f"Delete it (`aws cloudformation delete-stack {where}`), then deploy again."
        )
    if status == "DELETE_FAILED":
        return (
            f"stack {stack} is DELETE_FAILED. See why with `aws cloudformation "
            f"describe-stack-events {where}`, fix it (often a non-empty bucket), then "
            f"`aws cloudformation delete-stack {where}` and deploy again."
        )
    if status == "UPDATE_ROLLBACK_FAILED":
        return (
            f"stack {stack} is UPDATE_ROLLBACK_FAILED. Fix the cause in its events, then "
            f"`aws cloudformation continue-update-rollback {where}` and deploy again."
        )
    return None


# ------------------------------------------------------------------ stack events -----------

CANCELLED = "Resource creation cancelled"


def failure_report(events: Iterable[Mapping[str, Any]], limit: int = 8) -> list[str]:
    """The failures of the latest operation, cause first.

    ``events`` come as describe_stack_events gives them, newest first. When one resource
    fails, CloudFormation cancels the others ("Resource creation cancelled") and those are
    the newest; the cause is the earliest failure of the operation, which is shown first.
    """
    operation: list[Mapping[str, Any]] = []
    for event in events:  # newest first, back to the event that started this operation
        operation.append(event)
        if (
            event.get("ResourceType") == "AWS::CloudFormation::Stack"
            and event.get("ResourceStatusReason") == "User Initiated"
        ):
            break
    failed = [
        e
        for e in reversed(operation)  # oldest first
        if str(e.get("ResourceStatus", "")).endswith("_FAILED")
        and e.get("ResourceType") != "AWS::CloudFormation::Stack"
    ]
    causes = [e for e in failed if CANCELLED not in str(e.get("ResourceStatusReason", ""))]
    cancelled = [e for e in failed if e not in causes]
    lines = [
        f"  {e['LogicalResourceId']} ({e.get('ResourceType', '?')}) "
        f"{e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in causes[:limit]
    ]
    if cancelled:
        names = ", ".join(str(e["LogicalResourceId"]) for e in cancelled)
        lines.append(f"  then cancelled: {names}")
    return lines


def stack_events(cfn: Any, name: str, most: int = 500) -> list[dict[str, Any]]:
    """Newest first, enough pages to reach the start of the latest operation."""
    events: list[dict[str, Any]] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=name):
        events.extend(page.get("StackEvents", []))
        started = any(
            e.get("ResourceType") == "AWS::CloudFormation::Stack"
            and e.get("ResourceStatusReason") == "User Initiated"
            for e in page.get("StackEvents", [])
        )
        if started or len(events) >= most:
            break
    return events


# ------------------------------------------------------------------ alarms -----------------


def pending_alert_subscriptions(sns: Any, topic_arn: str) -> str | None:
    """A sentence for the deployer when no e-mail subscription of the topic is confirmed."""
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
    emails = [s for s in subscriptions if s.get("Protocol") == "email"]
    confirmed = [s for s in emails if str(s.get("SubscriptionArn", "")).startswith("arn:")]
    if confirmed:
        return None
    to = ", ".join(sorted({str(s.get("Endpoint")) for s in emails})) or "the alert address"
    return (
        f"The alarm e-mail subscription ({to}) is not confirmed: until someone clicks "
        "'Confirm subscription' in the message from AWS Notifications, alarms are not "
        "delivered (lost, not queued). Not received? Check spam, or deploy again with "
        "another --alert-email."
    )
