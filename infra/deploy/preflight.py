"""What `make deploy` finds out before it changes anything, and what it decides from that.

Each rule is a pure function of what was read (the environment, the account's Lambda
concurrency, the stack's status and parameters), so the rules are tested without AWS; the few
reads are small functions that take a boto3 session or client. ``check`` applies them all,
with the leftovers of an earlier failed create, once the account is known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, TextIO

from infra import template as tpl
from infra.deploy.leftovers import refuse_leftovers
from infra.deploy.plan import Plan, stack_parameters, template_defaults
from infra.deploy.stack import previous_parameters
from infra.errors import DeployError
from infra.template import load_template
from processor.core.errors import UnresolvedReference
from processor.entrypoints.settings import ProcessorSettings

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


# Images one processor invocation spools at once (IMGPIPE_IMAGES_AT_ONCE, which the template
# leaves at the processor's default): each holds its whole upload in /tmp.
IMAGES_AT_ONCE: int = ProcessorSettings.model_fields["images_at_once"].default


def ephemeral_storage_mb(max_upload_bytes: int, images_at_once: int = IMAGES_AT_ONCE) -> int:
    """Processor /tmp size for an upload limit: a spool per image in flight, plus headroom
    (MB counted as 10^6 bytes: never too small)."""
    needed = math.ceil(max_upload_bytes * images_at_once / 1_000_000) + EPHEMERAL_HEADROOM_MB
    if needed > EPHEMERAL_MAX_MB:
        largest = (EPHEMERAL_MAX_MB - EPHEMERAL_HEADROOM_MB) * 1_000_000 // images_at_once
        raise DeployError(
            f"MaxUploadBytes={max_upload_bytes} needs {needed} MB of /tmp for "
            f"{images_at_once} images at once; Lambda allows {EPHEMERAL_MAX_MB}: use at most "
            f"{largest}"
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


# ------------------------------------------------------------------ stack state ------------


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


# ------------------------------------------------------------------ the checks -------------


def check(
    plan: Plan,
    session: Any,
    current: Mapping[str, Any] | None,
    extra: Mapping[str, str],
    reader: ConcurrencyReader,
    out: TextIO,
) -> Plan:
    """Checks that need the account, before any build or change; returns the final plan.

    Leftovers of an earlier failed create; parameters a new stack cannot do without; the
    ephemeral storage the upload limit needs; the account's concurrency; the template's Rules.
    """
    defaults = template_defaults(plan.template)
    if current is not None:
        stuck = stuck_stack_advice(current["StackStatus"], plan.stack_name, plan.region)
        if stuck:
            raise DeployError(stuck)
    creating = current is None or current["StackStatus"] == "ROLLBACK_COMPLETE"
    if creating:
        refuse_leftovers(plan, session, failed_create=current is not None)
        # Parameters a new stack cannot do without fail now, not after ten minutes of building.
        stack_parameters(plan, defaults, None)
    previous = None if creating or current is None else previous_parameters(current)
    values = effective_parameters(plan.parameters, defaults, previous)
    derived = {
        "ProcessorEphemeralStorage": str(ephemeral_storage_mb(int(values["MaxUploadBytes"])))
    }
    chosen = set(extra) | {k for k, v in (previous or {}).items() if v != defaults.get(k)}
    fit = fit_concurrency(
        reader(session),
        values,
        chosen=chosen,
        reserved_now=int((previous or {}).get("ReservedConcurrency", "0")),
    )
    out.write(f"concurrency  {fit.note}\n")
    parameters = {**plan.parameters, **derived, **fit.changes}
    planned = replace(plan, parameters=parameters)
    check_rules(planned, previous)
    return planned


def check_rules(plan: Plan, previous: Mapping[str, str] | None) -> None:
    """Refuse parameters the template's Rules refuse, before any build."""
    defaults = template_defaults(plan.template)
    try:
        broken = tpl.rule_violations(
            effective_parameters(plan.parameters, defaults, previous),
            load_template(plan.template),
        )
    except UnresolvedReference as e:
        raise DeployError(f"the template's Rules cannot be evaluated: {e}") from e
    if broken:
        raise DeployError("the template's rules refuse these parameters: " + "; ".join(broken))
