"""Stateful resources of an earlier stack of this name that no stack owns any more.

CloudFormation cannot create the bucket over them, and each retry would leave one more table,
so a create refuses before anything is built and says what to delete or keep (docs/deploy.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from infra import template as tpl
from infra.deploy.plan import Plan
from infra.deploy.stack import failure_reasons
from infra.errors import DeployError
from infra.template import load_template


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


def refuse_leftovers(plan: Plan, session: Any, *, failed_create: bool) -> None:
    template = load_template(plan.template)
    if "Bucket" not in template["Resources"]:
        return
    bucket = tpl.resolve(
        tpl.properties(template, "Bucket")["BucketName"],
        {
            "AWS::StackName": plan.stack_name,
            "AWS::AccountId": plan.account,
            "AWS::Region": plan.region,
        },
        template,
    )
    leftovers = find_leftovers(
        session.client("s3"),
        session.client("dynamodb"),
        bucket=bucket,
        table_prefix=f"{plan.stack_name}-Table-",
    )
    if leftovers:
        cfn = session.client("cloudformation")
        reasons = failure_reasons(cfn, plan.stack_name) if failed_create else ""
        raise DeployError(
            leftovers_message(plan.stack_name, plan.region, leftovers, reasons.splitlines())
        )
