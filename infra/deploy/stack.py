"""The CloudFormation stack: create or update it, wait, explain a failure, report the outputs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from infra import template as tpl
from infra.deploy.artifacts import MAX_TEMPLATE_URL_BYTES
from infra.deploy.plan import Plan, stack_parameters, template_defaults
from infra.errors import DeployError


def template_body(template: Path) -> str:
    """The template as CloudFormation receives it: compact JSON (inline, or from S3 when
    it is over the inline limit: infra/deploy/artifacts.py)."""
    body = tpl.compact_body(template)
    if len(body.encode()) > MAX_TEMPLATE_URL_BYTES:
        raise DeployError(
            f"{template} is over CloudFormation's {MAX_TEMPLATE_URL_BYTES} bytes even as "
            "compact JSON"
        )
    return body


def describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    """None: no stack of that name (describe_stacks raises a ValidationError for it)."""
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except Exception as e:
        from processor.aws.errors import error_code  # botocore is loaded by now

        if error_code(e) == "ValidationError" and "does not exist" in str(e):
            return None
        raise
    return stacks[0] if stacks else None


def previous_parameters(stack: Mapping[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


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


def failure_reasons(cfn: Any, name: str) -> str:
    try:
        events = stack_events(cfn, name)
    except Exception:  # the reasons are a courtesy; the failure itself is reported anyway
        return ""
    return "\n".join(failure_report(events))


def _wait(cfn: Any, waiter: str, name: str, delay: int) -> None:
    try:
        cfn.get_waiter(waiter).wait(
            StackName=name, WaiterConfig={"Delay": delay, "MaxAttempts": 3600 // delay}
        )
    except Exception as e:  # botocore WaiterError: the stack rolled back or timed out
        reasons = failure_reasons(cfn, name)
        raise DeployError(f"stack {name}: {e}\n{reasons}".rstrip()) from e


def deploy_stack(
    cfn: Any, plan: Plan, source: Mapping[str, str], out: TextIO, delay: int = 15
) -> dict[str, str]:
    """Create or update the stack, wait for it, and return its outputs.

    ``source`` is ``{"TemplateBody": ...}`` or ``{"TemplateURL": ...}`` (template_source).
    """
    defaults = template_defaults(plan.template)
    current = describe_stack(cfn, plan.stack_name)
    if current is not None and current["StackStatus"] == "ROLLBACK_COMPLETE":
        # A stack whose creation failed cannot be updated, only deleted and created again.
        # Its bucket and table went with the rollback (RetainExceptOnCreate); the run checked
        # for older leftovers before this.
        out.write(f"stack        {plan.stack_name} failed to create earlier; deleting it\n")
        reasons = failure_reasons(cfn, plan.stack_name)
        if reasons:
            out.write(f"             it failed because:\n{reasons}\n")
        cfn.delete_stack(StackName=plan.stack_name)
        _wait(cfn, "stack_delete_complete", plan.stack_name, delay)
        current = None
    if current is not None and current["StackStatus"].endswith("_IN_PROGRESS"):
        raise DeployError(f"stack {plan.stack_name} is {current['StackStatus']}; try again later")
    common = {
        "StackName": plan.stack_name,
        **source,
        "Capabilities": ["CAPABILITY_IAM"],
        "Tags": [{"Key": "project", "Value": "imgpipe"}],
    }
    if current is None:
        out.write(f"stack        creating {plan.stack_name} (CloudFront takes minutes)\n")
        params = stack_parameters(plan, defaults, None)
        cfn.create_stack(**common, Parameters=params)
        _wait(cfn, "stack_create_complete", plan.stack_name, delay)
    else:
        params = stack_parameters(plan, defaults, previous_parameters(current))
        out.write(f"stack        updating {plan.stack_name}\n")
        try:
            cfn.update_stack(**common, Parameters=params)
        except Exception as e:
            if "No updates are to be performed" not in str(e):
                raise
            out.write("stack        no changes\n")
        else:
            _wait(cfn, "stack_update_complete", plan.stack_name, delay)
    final = describe_stack(cfn, plan.stack_name) or {}
    return {o["OutputKey"]: o["OutputValue"] for o in final.get("Outputs", [])}


def write_outputs(outputs: Mapping[str, str], out: TextIO) -> None:
    out.write("\noutputs\n")
    width = max((len(k) for k in outputs), default=0)
    for key, value in sorted(outputs.items()):
        out.write(f"  {key.ljust(width)}  {value}\n")


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
