"""What the local stack provisions and runs, read from ``infra/template.yaml``.

Names, keys, indexes, queue settings, redrive, the notification filter, the event source
mappings and the functions' environments come from the template (through infra/template.py),
so that the local stack and the deployed one cannot drift. Physical names follow
CloudFormation's habit (``<stack>-<LogicalId>``) where the template leaves them to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import template as cfn
from processor.core.errors import UnresolvedReference

STACK_NAME = "imgpipe-local"
# moto's (and LocalStack's) default account; the stack asks STS for the real one.
LOCAL_ACCOUNT = "123456789012"
TEMPLATE = cfn.TEMPLATE_PATH


@dataclass(frozen=True)
class MappingSpec:
    """An SQS event source mapping (the processor's, the flusher's)."""

    batch_size: int
    batching_window_s: float  # MaximumBatchingWindowInSeconds
    report_batch_item_failures: bool
    max_concurrency: int | None  # ScalingConfig.MaximumConcurrency


@dataclass(frozen=True)
class StackSpec:
    stack_name: str
    region: str
    account: str
    bucket: str
    queue_name: str
    dlq_name: str
    table_name: str
    function_name: str  # the processor's FunctionName
    queue: cfn.QueueSettings
    notification: cfn.NotificationFilter
    table: dict[str, Any]  # create_table kwargs, less TableName
    cors_rules: list[dict[str, Any]]  # S3 CORSRules the template declares (may be none)
    versioned: bool  # the bucket's VersioningConfiguration is Enabled
    # The CloudFront distribution in front of the bucket, as CreateDistribution takes it
    # (None when the template declares none). What exists only in AWS is left out: the
    # origin access control, cache and response headers policies.
    distribution: dict[str, Any] | None
    mapping: MappingSpec
    # The EventBridge bus the template creates for completion events ("" when it creates
    # none: events then go to the bus the EventBusName parameter names).
    event_bus: str
    processor: cfn.FunctionSpec  # environment unresolved: see ``environment``
    api: cfn.FunctionSpec
    template: dict[str, Any] = field(repr=False, compare=False)
    # Template parameters given values other than their defaults (e.g. the CORS origin).
    parameters: dict[str, str] = field(default_factory=dict)
    # The flusher (one CloudFront invalidation per window of deleted images' paths), its
    # mapping and its queue; None when the template declares none.
    flush: cfn.FunctionSpec | None = None
    flush_mapping: MappingSpec | None = None
    invalidation_queue: cfn.QueueSettings | None = None
    invalidation_queue_name: str = ""
    invalidation_dlq_name: str = ""

    def refs(
        self,
        *,
        queue_url: str,
        dlq_url: str,
        distribution_id: str = "",
        invalidation_queue_url: str = "",
    ) -> dict[str, str]:
        """What Ref and GetAtt give for this stack's resources, once the queues exist."""
        arn = f"arn:aws:sqs:{self.region}:{self.account}"
        bus = f"arn:aws:events:{self.region}:{self.account}:event-bus/{self.event_bus}"
        distribution = {self.distribution_id: distribution_id} if distribution_id else {}
        invalidations = (
            {
                "InvalidationQueue": invalidation_queue_url,
                "InvalidationQueue.Arn": f"{arn}:{self.invalidation_queue_name}",
            }
            if invalidation_queue_url
            else {}
        )
        return {
            **distribution,
            **invalidations,
            **self.parameters,
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "Bucket": self.bucket,
            "Bucket.Arn": f"arn:aws:s3:::{self.bucket}",
            "Table": self.table_name,
            "Queue": queue_url,
            "Queue.Arn": f"{arn}:{self.queue_name}",
            "Queue.QueueName": self.queue_name,
            "DeadLetterQueue": dlq_url,
            "DeadLetterQueue.Arn": f"{arn}:{self.dlq_name}",
            "DeadLetterQueue.QueueName": self.dlq_name,
            "EventBus": self.event_bus,
            "EventBus.Arn": bus,
        }

    @property
    def distribution_id(self) -> str:
        """The distribution's logical id (what ``!Ref`` names)."""
        distributions = cfn.resources(self.template, "AWS::CloudFront::Distribution")
        return next(iter(distributions), "Distribution")

    def environment(
        self,
        function: cfn.FunctionSpec,
        *,
        queue_url: str,
        dlq_url: str,
        distribution_id: str = "",
        invalidation_queue_url: str = "",
    ) -> dict[str, str]:
        """The function's declared environment, resolved. Values that exist only in AWS
        (CloudFront's domain, Secrets Manager references) are left out: the local stack
        sets its own."""
        refs = self.refs(
            queue_url=queue_url,
            dlq_url=dlq_url,
            distribution_id=distribution_id,
            invalidation_queue_url=invalidation_queue_url,
        )
        env: dict[str, str] = {}
        for name, value in function.env.items():
            try:
                resolved = str(cfn.resolve(value, refs, self.template))
            except UnresolvedReference:
                continue
            if "{{resolve:" not in resolved:
                env[name] = resolved
        return env


def _mapping_properties(
    template: Mapping[str, Any], refs: Mapping[str, str], function: str = "processor"
) -> dict[str, Any]:
    """A function's event source mapping, resolved with the stack's parameters."""
    logical_id = cfn.FUNCTIONS[function]
    for mapping in cfn.resources(template, "AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        if cfn.references(props["FunctionName"]) == {logical_id}:
            wanted = {k: v for k, v in props.items() if k not in ("FunctionName", "EventSourceArn")}
            resolved: dict[str, Any] = cfn.resolve(wanted, refs, template)
            return resolved
    raise ValueError(f"no event source mapping invokes {logical_id}")


def _mapping_spec(mapping: Mapping[str, Any]) -> MappingSpec:
    scaling = mapping.get("ScalingConfig", {})
    return MappingSpec(
        batch_size=int(mapping.get("BatchSize", 10)),
        batching_window_s=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures"
        in mapping.get("FunctionResponseTypes", []),
        max_concurrency=(
            int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None
        ),
    )


def _flusher(template: Mapping[str, Any], pseudo: Mapping[str, str]) -> dict[str, Any]:
    """The flusher's StackSpec fields, or none when the template declares no flusher."""
    logical_id = cfn.FUNCTIONS["flush"]
    if logical_id not in template.get("Resources", {}):
        return {}
    queue_id = str(cfn.event_source(template, "flush")["EventSource"])
    queue_props = cfn.properties(template, queue_id)
    dlq_id = cfn.references(queue_props["RedrivePolicy"]["deadLetterTargetArn"]).pop()
    stack_name = pseudo["AWS::StackName"]
    return {
        "flush": cfn.function_spec("flush", template=template),
        "flush_mapping": _mapping_spec(_mapping_properties(template, pseudo, "flush")),
        "invalidation_queue": cfn.queue_settings(template, queue_id),
        "invalidation_queue_name": _name(
            queue_props, "QueueName", pseudo, f"{stack_name}-{queue_id}"
        ),
        "invalidation_dlq_name": _name(
            cfn.properties(template, dlq_id), "QueueName", pseudo, f"{stack_name}-{dlq_id}"
        ),
    }


def _name(props: Mapping[str, Any], key: str, refs: Mapping[str, str], fallback: str) -> str:
    return str(cfn.resolve(props[key], refs)) if key in props else fallback


def _cors_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's CorsRule -> the S3 API's CORSRule."""
    out: dict[str, Any] = {
        "AllowedMethods": list(rule["AllowedMethods"]),
        "AllowedOrigins": list(rule["AllowedOrigins"]),
    }
    if "AllowedHeaders" in rule:
        out["AllowedHeaders"] = list(rule["AllowedHeaders"])
    if "ExposedHeaders" in rule:
        out["ExposeHeaders"] = list(rule["ExposedHeaders"])
    if "MaxAge" in rule:
        out["MaxAgeSeconds"] = int(rule["MaxAge"])
    return out


def _listed(items: list[Any]) -> dict[str, Any]:
    return {"Quantity": len(items), "Items": items}


def distribution_config(
    template: Mapping[str, Any], refs: Mapping[str, str], *, stack_name: str
) -> dict[str, Any] | None:
    """The template's one distribution as CloudFront's API takes it (lists become
    Quantity/Items); properties that refer to what exists only in AWS are dropped."""
    distributions = cfn.resources(template, "AWS::CloudFront::Distribution")
    if not distributions:
        return None
    (props,) = (d["Properties"]["DistributionConfig"] for d in distributions.values())

    def known(node: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            try:
                out[key] = cfn.resolve(value, refs, template)
            except UnresolvedReference:
                continue  # OriginAccessControlId, CachePolicyId, ResponseHeadersPolicyId
        return out

    # Origins only AWS has (the on-demand function's URL) are left out, with the origin group
    # and path behaviours that use them: the CDN stand-in plays that part (cli/local/cdn.py).
    origins = [o for o in (known(o) for o in props["Origins"]) if "DomainName" in o]
    behaviour = known(props["DefaultCacheBehavior"])
    for listed in ("AllowedMethods", "CachedMethods"):
        behaviour.pop(listed, None)
    allowed = cfn.resolve(props["DefaultCacheBehavior"].get("AllowedMethods", ["GET", "HEAD"]))
    cached = cfn.resolve(props["DefaultCacheBehavior"].get("CachedMethods", allowed))
    behaviour["AllowedMethods"] = {**_listed(allowed), "CachedMethods": _listed(cached)}
    behaviour.setdefault("MinTTL", 0)  # required without a cache policy
    aws_only = ("Origins", "DefaultCacheBehavior", "OriginGroups", "CacheBehaviors")
    top = known({k: v for k, v in props.items() if k not in aws_only})
    if "IPV6Enabled" in top:
        top["IsIPV6Enabled"] = top.pop("IPV6Enabled")
    return {
        **top,
        "CallerReference": stack_name,
        "Comment": str(top.get("Comment", stack_name)),
        "Enabled": bool(top.get("Enabled", True)),
        "Origins": _listed(origins),
        "DefaultCacheBehavior": behaviour,
    }


def _hsts(config: Mapping[str, Any]) -> str:
    value = f"max-age={int(config['AccessControlMaxAgeSec'])}"
    value += "; includeSubDomains" if config.get("IncludeSubdomains") else ""
    return value + ("; preload" if config.get("Preload") else "")


def _xss(config: Mapping[str, Any]) -> str:
    if not config.get("Protection"):
        return "0"
    return "1; mode=block" if config.get("ModeBlock") else "1"


# CloudFront's security headers, by their SecurityHeadersConfig key: (header, its value).
_SECURITY_HEADERS: dict[str, tuple[str, Any]] = {
    "StrictTransportSecurity": ("Strict-Transport-Security", _hsts),
    "ContentTypeOptions": ("X-Content-Type-Options", lambda _: "nosniff"),
    "FrameOptions": ("X-Frame-Options", lambda c: str(c["FrameOption"])),
    "ReferrerPolicy": ("Referrer-Policy", lambda c: str(c["ReferrerPolicy"])),
    "XSSProtection": ("X-XSS-Protection", _xss),
    "ContentSecurityPolicy": ("Content-Security-Policy", lambda c: str(c["ContentSecurityPolicy"])),
}


def edge_response_headers(template: Mapping[str, Any]) -> dict[str, str]:
    """The headers the template's response headers policy makes CloudFront add to every
    rendition (its security headers and custom headers), as the CDN stand-in sends them."""
    headers: dict[str, str] = {}
    for policy in cfn.resources(template, "AWS::CloudFront::ResponseHeadersPolicy").values():
        config = policy["Properties"]["ResponseHeadersPolicyConfig"]
        for key, value in config.get("SecurityHeadersConfig", {}).items():
            if key not in _SECURITY_HEADERS:
                raise ValueError(f"the CDN stand-in does not know CloudFront's {key} header")
            name, render = _SECURITY_HEADERS[key]
            headers[name] = render(value)
        for item in config.get("CustomHeadersConfig", {}).get("Items", []):
            headers[str(item["Header"])] = str(item["Value"])
    return headers


def load_spec(
    path: Path | str = TEMPLATE,
    *,
    stack_name: str = STACK_NAME,
    region: str = "us-east-1",
    account: str = LOCAL_ACCOUNT,
    parameters: Mapping[str, str] | None = None,
) -> StackSpec:
    """The stack as the template declares it; ``parameters`` override parameter defaults."""
    template = cfn.load_template(path)
    declared = template.get("Parameters", {})
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise ValueError(f"the template declares no parameter {unknown}")
    pseudo = {
        **(parameters or {}),
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": account,
    }

    queue_id = str(cfn.event_source(template, "processor")["EventSource"])
    mapping = _mapping_properties(template, pseudo)
    queue_props = cfn.properties(template, queue_id)
    dlq_id = cfn.references(queue_props["RedrivePolicy"]["deadLetterTargetArn"]).pop()
    notification = cfn.notification_filter(template)
    if notification.queue != queue_id:
        raise ValueError(
            f"the bucket notifies {notification.queue}, the processor reads {queue_id}"
        )
    (bucket_id,) = cfn.resources(template, "AWS::S3::Bucket")
    (table_id,) = cfn.resources(template, "AWS::DynamoDB::Table")
    bucket_props = cfn.properties(template, bucket_id)
    table_props = cfn.properties(template, table_id)
    cors = bucket_props.get("CorsConfiguration", {}).get("CorsRules", [])
    bucket_name = _name(bucket_props, "BucketName", pseudo, f"{stack_name}-{bucket_id}".lower())
    buses = cfn.resources(template, "AWS::Events::EventBus")
    event_bus = next(
        (_name(b["Properties"], "Name", pseudo, f"{stack_name}-{i}") for i, b in buses.items()),
        "",
    )
    return StackSpec(
        stack_name=stack_name,
        region=region,
        account=account,
        bucket=bucket_name,
        queue_name=_name(queue_props, "QueueName", pseudo, f"{stack_name}-{queue_id}"),
        dlq_name=_name(
            cfn.properties(template, dlq_id), "QueueName", pseudo, f"{stack_name}-{dlq_id}"
        ),
        table_name=_name(table_props, "TableName", pseudo, f"{stack_name}-{table_id}"),
        function_name=_name(
            cfn.properties(template, cfn.FUNCTIONS["processor"]),
            "FunctionName",
            pseudo,
            f"{stack_name}-processor",
        ),
        queue=cfn.queue_settings(template, queue_id),
        notification=notification,
        table=cfn.table_definition(template, table_id),
        cors_rules=[_cors_rule(cfn.resolve(rule, pseudo, template)) for rule in cors],
        versioned=bucket_props.get("VersioningConfiguration", {}).get("Status") == "Enabled",
        distribution=distribution_config(
            template,
            {
                **pseudo,
                f"{bucket_id}.RegionalDomainName": f"{bucket_name}.s3.{region}.amazonaws.com",
            },
            stack_name=stack_name,
        ),
        mapping=_mapping_spec(mapping),
        event_bus=event_bus,
        processor=cfn.function_spec("processor", template=template),
        api=cfn.function_spec("api", template=template),
        template=template,
        parameters=dict(parameters or {}),
        **_flusher(template, pseudo),
    )
