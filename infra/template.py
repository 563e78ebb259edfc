"""Read infra/template.yaml from Python: the one place the deployment's names and settings live.

The local stack, the tests and the deploy command ask this module for the table schema, the
queue settings, the bucket notification and each function's environment, so none of them keeps
a second copy that could drift from what CloudFormation creates.

The YAML loader understands CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub``,
...) and turns them into the long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``), which is
also what the template looks like as JSON. ``resolve`` substitutes those intrinsics with values
the caller knows (a local bucket name, a moto queue URL), and with parameter defaults.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from processor.core.errors import UnresolvedReference

TEMPLATE_PATH = Path(__file__).resolve().with_name("template.yaml")

# Short name -> logical id, so callers can say function_env("processor").
FUNCTIONS = {"processor": "ProcessorFunction", "api": "ApiFunction", "flush": "FlushFunction"}
# Resource metadata only scanners read; make deploy leaves it out of the body it sends.
SCANNER_METADATA = ("checkov", "cfn-lint")

# Intrinsics whose short form takes a sequence or scalar as-is.
_SHORT_TAGS = (
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
)

# Pseudo parameters a caller may supply in ``refs``; these are their stand-ins otherwise.
PSEUDO_DEFAULTS = {
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class _NoValue:
    """AWS::NoValue: the property is left out."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# ------------------------------------------------------------------ loading ----------------


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no stubs here
    """SafeLoader plus CloudFormation's tags (PyYAML, YAML 1.1 like CloudFormation itself)."""


def _construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _intrinsic(name: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {name: _construct(loader, node)}

    return construct


def _get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct(loader, node)
    if isinstance(value, str):
        # "Resource.Attribute", where the attribute may itself contain dots (Endpoint.Address).
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


_CfnLoader.add_constructor("!Ref", _intrinsic("Ref"))
_CfnLoader.add_constructor("!Condition", _intrinsic("Condition"))
_CfnLoader.add_constructor("!GetAtt", _get_att)
for _tag in _SHORT_TAGS:
    _CfnLoader.add_constructor(f"!{_tag}", _intrinsic(f"Fn::{_tag}"))


@lru_cache(maxsize=8)
def _parse(path: Path, mtime_ns: int) -> dict[str, Any]:
    del mtime_ns  # only part of the cache key: an edited template is read again
    with path.open(encoding="utf-8") as f:
        data = yaml.load(f, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return data


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain dicts, intrinsics in long form. A fresh copy each call."""
    p = Path(path)
    return copy.deepcopy(_parse(p, p.stat().st_mtime_ns))


def compact_body(path: Path | str = TEMPLATE_PATH) -> str:
    """The template as CloudFormation receives it from ``make deploy``: compact JSON.

    The same resources as the YAML (intrinsics in their long form, which CloudFormation
    reads in JSON), without the comments that explain it: the YAML is the source people
    read, this is what has to fit CloudFormation's 51,200-byte inline limit.
    """
    body = copy.deepcopy(load_template(path))
    for res in body.get("Resources", {}).values():
        # Scanner suppressions (checkov, cfn-lint) are for the people and tools reading the
        # YAML; CloudFormation ignores them, and they cost 3 KB of the limit.
        meta = res.get("Metadata")
        if isinstance(meta, dict):
            for tool in SCANNER_METADATA:
                meta.pop(tool, None)
            if not meta:
                del res["Metadata"]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _template(template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return load_template() if template is None else template


def resources(
    template: Mapping[str, Any] | None = None, resource_type: str | None = None
) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, optionally only those of one type (e.g. "AWS::SQS::Queue")."""
    res: dict[str, dict[str, Any]] = dict(_template(template)["Resources"])
    if resource_type is None:
        return res
    return {k: v for k, v in res.items() if v.get("Type") == resource_type}


def resource(template: Mapping[str, Any] | None, logical_id: str) -> dict[str, Any]:
    try:
        found: dict[str, Any] = _template(template)["Resources"][logical_id]
    except KeyError:
        raise KeyError(f"the template has no resource {logical_id!r}") from None
    return found


def properties(template: Mapping[str, Any] | None, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = resource(template, logical_id).get("Properties", {})
    return props


def parameter_defaults(template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Parameter name -> default as a string (CloudFormation passes every parameter as text)."""
    params = _template(template).get("Parameters", {})
    return {k: str(v["Default"]) for k, v in params.items() if "Default" in v}


# ------------------------------------------------------------------ references -------------

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")
_DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:[^}]*\}\}")


def references(node: Any) -> set[str]:
    """Logical ids and parameter names a node refers to (Ref, GetAtt, ${} in Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).partition(".")[0])
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else (value[0], value[1])
                for name in _SUB_VAR.findall(text):
                    if name not in local:
                        found.add(name.partition(".")[0])
                found |= references(local)
            else:
                found |= references(value)
    return {r for r in found if not r.startswith("AWS::")}


def subset_template(
    template: Mapping[str, Any],
    resource_types: Iterable[str],
    stand_ins: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A template with only resources of the given types that refer to nothing left out.

    Used to create in moto what moto's CloudFormation can create (it fails on a !GetAtt to a
    resource type it does not know). DependsOn entries and Outputs that name dropped resources
    are removed too; parameters and conditions stay, so the same parameters still apply.
    ``stand_ins`` names dropped resources whose ``Ref`` a kept one may still use: each becomes
    a parameter of that name with the given default (e.g. a distribution id).
    """
    wanted = set(resource_types)
    extra = {
        name: {"Type": "String", "Default": value}
        for name, value in (stand_ins or {}).items()
        if template["Resources"].get(name, {}).get("Type") not in wanted
    }
    params = set(template.get("Parameters", {})) | set(extra)
    kept = {k: copy.deepcopy(v) for k, v in template["Resources"].items() if v["Type"] in wanted}
    while True:  # dropping one resource can orphan another that refers to it
        known = set(kept) | params
        orphans = {k for k, v in kept.items() if not references(v.get("Properties", {})) <= known}
        if not orphans:
            break
        for k in orphans:
            del kept[k]
    for res in kept.values():
        depends = res.get("DependsOn")
        if depends is not None:
            depends = [depends] if isinstance(depends, str) else depends
            depends = [d for d in depends if d in kept]
            if depends:
                res["DependsOn"] = depends
            else:
                del res["DependsOn"]
    if extra:
        kept = {k: _stand_in_attributes(v, set(extra)) for k, v in kept.items()}
    out = {k: copy.deepcopy(v) for k, v in template.items() if k not in ("Resources", "Outputs")}
    if extra:
        out["Parameters"] = {**out.get("Parameters", {}), **extra}
    out["Resources"] = kept
    known = set(kept) | (params - set(extra))  # a stand-in has no attributes to output
    out["Outputs"] = {
        k: copy.deepcopy(v)
        for k, v in template.get("Outputs", {}).items()
        if references(v) <= known
    }
    return out


# ------------------------------------------------------------------ resolving --------------


def _stand_in_attributes(node: Any, stand_ins: set[str]) -> Any:
    """A stand-in is a parameter, which has no attributes: ``!GetAtt Distribution.DomainName``
    (or ``${Distribution.DomainName}`` in a Sub) becomes a placeholder of that name."""
    if isinstance(node, list):
        return [_stand_in_attributes(v, stand_ins) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and "Fn::GetAtt" in node:
        name, attribute = node["Fn::GetAtt"]
        if name in stand_ins:
            return f"{name}.{attribute}.stand-in"
    if len(node) == 1 and isinstance(node.get("Fn::Sub"), str):
        text = _SUB_VAR.sub(
            lambda m: (
                f"{m.group(1)}.stand-in"
                if "." in m.group(1) and m.group(1).split(".")[0] in stand_ins
                else m.group(0)
            ),
            node["Fn::Sub"],
        )
        return {"Fn::Sub": text}
    return {k: _stand_in_attributes(v, stand_ins) for k, v in node.items()}


def resolve(
    node: Any,
    refs: Mapping[str, Any] | None = None,
    template: Mapping[str, Any] | None = None,
) -> Any:
    """Replace intrinsics with values.

    ``refs`` maps a logical id or parameter name to its Ref value (``"Bucket": "my-bucket"``),
    ``"Resource.Attribute"`` to a GetAtt value (``"Queue.Arn": "arn:..."``), and may set pseudo
    parameters (``"AWS::Region"``). Parameters fall back to their defaults. Properties that
    resolve to AWS::NoValue are dropped. Raises UnresolvedReference for anything unknown.
    """
    tpl = _template(template)
    known: dict[str, Any] = {**PSEUDO_DEFAULTS, **parameter_defaults(tpl), **(refs or {})}
    return _resolve(node, known, tpl)


def _lookup(name: str, known: Mapping[str, Any]) -> Any:
    if name == "AWS::NoValue":
        return NO_VALUE
    if name not in known:
        raise UnresolvedReference(f"no value for {name!r}: pass it in refs")
    return known[name]


def _resolve(node: Any, known: Mapping[str, Any], tpl: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        items = [_resolve(v, known, tpl) for v in node]
        return [v for v in items if v is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return _lookup(value, known)
        if key == "Fn::GetAtt":
            name = ".".join(value) if isinstance(value, list) else value
            return _lookup(name, known)
        if key == "Fn::Sub":
            return _sub(value, known, tpl)
        if key == "Fn::Join":
            delimiter, parts = value
            return delimiter.join(str(p) for p in _resolve(parts, known, tpl))
        if key == "Fn::Split":
            delimiter, source = value
            return str(_resolve(source, known, tpl)).split(delimiter)
        if key == "Fn::If":
            name, when_true, when_false = value
            chosen = when_true if _condition(name, known, tpl) else when_false
            return _resolve(chosen, known, tpl)
        if key.startswith("Fn::") or key == "Condition":
            raise UnresolvedReference(f"resolve() does not evaluate {key}")
    out = {k: _resolve(v, known, tpl) for k, v in node.items()}
    return {k: v for k, v in out.items() if v is not NO_VALUE}


def _sub(value: Any, known: Mapping[str, Any], tpl: Mapping[str, Any]) -> str:
    text, local = (value, {}) if isinstance(value, str) else (value[0], value[1])
    local_values = {k: _resolve(v, known, tpl) for k, v in local.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in local_values:
            return str(local_values[name])
        return str(_lookup(name, known))

    # "${!Literal}" is CloudFormation's escape for a literal "${Literal}".
    return _SUB_VAR.sub(replace, text).replace("${!", "${")


def _condition(name: str, known: Mapping[str, Any], tpl: Mapping[str, Any]) -> bool:
    try:
        expr = tpl["Conditions"][name]
    except KeyError:
        raise UnresolvedReference(f"no condition {name!r}") from None
    return _evaluate(expr, known, tpl)


def _evaluate(expr: Any, known: Mapping[str, Any], tpl: Mapping[str, Any]) -> bool:
    ((key, value),) = expr.items()
    if key == "Fn::Equals":
        left, right = (_resolve(v, known, tpl) for v in value)
        return str(left) == str(right)
    if key == "Fn::Not":
        return not _evaluate(value[0], known, tpl)
    if key == "Fn::And":
        return all(_evaluate(v, known, tpl) for v in value)
    if key == "Fn::Or":
        return any(_evaluate(v, known, tpl) for v in value)
    if key == "Condition":
        return _condition(value, known, tpl)
    raise UnresolvedReference(f"cannot evaluate condition {key}")


# What CloudFormation allows inside a Rule: Ref and the rule functions, nothing else (no
# Fn::Join, Fn::Sub, Fn::If: a stack create with them fails on the template, not on a value).
RULE_FUNCTIONS = frozenset(
    {
        "Fn::And",
        "Fn::Contains",
        "Fn::EachMemberEquals",
        "Fn::EachMemberIn",
        "Fn::Equals",
        "Fn::Not",
        "Fn::Or",
        "Fn::RefAll",
        "Fn::ValueOf",
        "Fn::ValueOfAll",
    }
)
# Rule functions that read the account (RefAll: every VPC id of the region, ValueOf: a
# parameter's AWS-side attribute): only CloudFormation can answer them.
_ACCOUNT_RULE_FUNCTIONS = frozenset({"Fn::RefAll", "Fn::ValueOf", "Fn::ValueOfAll"})


def rule_violations(
    values: Mapping[str, str], template: Mapping[str, Any] | None = None
) -> list[str]:
    """The AssertDescription of every template Rule that ``values`` (parameter -> text) break.

    CloudFormation checks Rules when a stack is created or updated; the deploy checks them
    first, before a ten-minute image build, and moto does not check them at all. Only what
    CloudFormation allows in a Rule is evaluated: anything else raises UnresolvedReference.
    """
    tpl = _template(template)
    params = tpl.get("Parameters", {})
    known: dict[str, Any] = {**parameter_defaults(tpl), **values}
    for name, value in list(known.items()):
        # A list parameter's Ref is the list (CloudFormation splits the text on commas).
        if str(params.get(name, {}).get("Type", "")).startswith(("List<", "CommaDelimitedList")):
            known[name] = str(value).split(",")
    broken = []
    for name, rule in tpl.get("Rules", {}).items():
        condition = rule.get("RuleCondition")
        if condition is not None and not _rule_true(condition, known, name):
            continue
        for assertion in rule["Assertions"]:
            if not _rule_true(assertion["Assert"], known, name):
                broken.append(str(assertion.get("AssertDescription", assertion["Assert"])))
    return broken


def _rule_true(expr: Any, known: Mapping[str, Any], rule: str) -> bool:
    value = _rule_value(expr, known, rule)
    if not isinstance(value, bool):
        raise UnresolvedReference(f"rule {rule}: {expr!r} is not true or false")
    return value


def _rule_value(node: Any, known: Mapping[str, Any], rule: str) -> Any:
    if isinstance(node, list):
        return [_rule_value(v, known, rule) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise UnresolvedReference(f"rule {rule}: {node!r} is not a rule function")
    ((key, value),) = node.items()
    if key == "Ref":
        if value.startswith("AWS::") or value not in known:
            raise UnresolvedReference(f"rule {rule}: no parameter {value!r}")
        return known[value]
    if key not in RULE_FUNCTIONS:
        raise UnresolvedReference(f"rule {rule}: {key} is not allowed in a Rule")
    if key in _ACCOUNT_RULE_FUNCTIONS:
        raise UnresolvedReference(f"rule {rule}: {key} needs the account; only AWS evaluates it")
    args = [_rule_value(v, known, rule) for v in value]
    if key == "Fn::Not":
        return not _truth(args[0], rule)
    if key == "Fn::And":
        return all(_truth(a, rule) for a in args)
    if key == "Fn::Or":
        return any(_truth(a, rule) for a in args)
    if key == "Fn::Equals":
        return _text(args[0]) == _text(args[1])
    if key == "Fn::Contains":  # [list of strings, string]
        return _text(args[1]) in [_text(v) for v in _as_list(args[0])]
    if key == "Fn::EachMemberEquals":  # [list, string]
        return all(_text(v) == _text(args[1]) for v in _as_list(args[0]))
    # Fn::EachMemberIn: [list, list]
    allowed = [_text(v) for v in _as_list(args[1])]
    return all(_text(v) in allowed for v in _as_list(args[0]))


def _truth(value: Any, rule: str) -> bool:
    if not isinstance(value, bool):
        raise UnresolvedReference(f"rule {rule}: {value!r} is not true or false")
    return value


def _text(value: Any) -> str:
    if isinstance(value, list):
        raise UnresolvedReference(f"a list where a rule compares text: {value!r}")
    return str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ what callers need ------


def table_definition(
    template: Mapping[str, Any] | None = None, logical_id: str = "Table"
) -> dict[str, Any]:
    """boto3 ``create_table`` keyword arguments, less TableName, exactly as declared.

    ``dynamodb.create_table(TableName=name, **table_definition())``
    """
    props = properties(template, logical_id)
    keys = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")
    return {k: copy.deepcopy(props[k]) for k in keys if k in props}


@dataclass(frozen=True)
class QueueSettings:
    """The processing queue and its dead-letter queue, in seconds and counts."""

    visibility_timeout: int
    message_retention: int
    receive_wait_time: int
    max_receive_count: int
    dlq_message_retention: int

    def queue_attributes(self, dlq_arn: str) -> dict[str, str]:
        """boto3 ``create_queue`` Attributes of the processing queue."""
        return {
            "VisibilityTimeout": str(self.visibility_timeout),
            "MessageRetentionPeriod": str(self.message_retention),
            "ReceiveMessageWaitTimeSeconds": str(self.receive_wait_time),
            "RedrivePolicy": (
                f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{self.max_receive_count}"}}'
            ),
        }

    def dlq_attributes(self) -> dict[str, str]:
        """boto3 ``create_queue`` Attributes of the dead-letter queue."""
        return {"MessageRetentionPeriod": str(self.dlq_message_retention)}


def queue_settings(
    template: Mapping[str, Any] | None = None, logical_id: str = "Queue"
) -> QueueSettings:
    tpl = _template(template)
    queue = properties(tpl, logical_id)
    redrive = queue["RedrivePolicy"]
    dlq_id = references(redrive["deadLetterTargetArn"]).pop()
    dlq = properties(tpl, dlq_id)
    return QueueSettings(
        visibility_timeout=int(queue.get("VisibilityTimeout", 30)),
        message_retention=int(queue.get("MessageRetentionPeriod", 345600)),
        receive_wait_time=int(queue.get("ReceiveMessageWaitTimeSeconds", 0)),
        max_receive_count=int(redrive["maxReceiveCount"]),
        dlq_message_retention=int(dlq.get("MessageRetentionPeriod", 345600)),
    )


@dataclass(frozen=True)
class NotificationFilter:
    """Which S3 events of which keys reach which queue."""

    events: tuple[str, ...]
    prefix: str
    queue: str  # logical id of the target queue

    def queue_configuration(self, queue_arn: str) -> dict[str, Any]:
        """One entry of boto3 ``put_bucket_notification_configuration``'s QueueConfigurations."""
        return {
            "QueueArn": queue_arn,
            "Events": list(self.events),
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": self.prefix}]}},
        }


def notification_filter(
    template: Mapping[str, Any] | None = None, bucket: str = "Bucket"
) -> NotificationFilter:
    """The bucket's queue notifications, which CloudFormation spells one event per entry."""
    configs = properties(template, bucket)["NotificationConfiguration"]["QueueConfigurations"]
    events: list[str] = []
    targets: set[tuple[str, str]] = set()
    for config in configs:
        events.append(config["Event"])
        rules = config.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        prefixes = [r["Value"] for r in rules if r["Name"].lower() == "prefix"]
        queues = references(config["Queue"])
        if len(prefixes) != 1 or len(queues) != 1:
            raise ValueError(f"a notification needs one prefix and one queue, got {config}")
        targets.add((prefixes[0], queues.pop()))
    if len(targets) != 1:
        # One filter shape keeps the local stack and the processor's key checks simple.
        raise ValueError(f"notifications differ in prefix or queue: {sorted(targets)}")
    ((prefix, queue),) = targets
    return NotificationFilter(events=tuple(events), prefix=prefix, queue=queue)


@dataclass(frozen=True)
class FunctionSpec:
    """What a function runs and with what (intrinsics resolved where refs allowed)."""

    logical_id: str
    handler: str  # module.attribute, from ImageConfig.Command
    timeout: int  # seconds
    memory: int  # MB
    env: dict[str, Any] = field(default_factory=dict)


def _function_id(function: str) -> str:
    return FUNCTIONS.get(function, function)


def function_spec(
    function: str,
    refs: Mapping[str, Any] | None = None,
    template: Mapping[str, Any] | None = None,
) -> FunctionSpec:
    """A function's handler, timeout, memory and environment.

    ``function`` is "processor", "api" or a logical id. Without ``refs`` the environment keeps
    intrinsics (``{"Ref": "Bucket"}``); with ``refs`` every value is resolved to text, and
    variables whose value is a CloudFormation dynamic reference (``{{resolve:...}}``, e.g. the
    API's IMGPIPE_CURSOR_SECRET) are left out: they name a secret, they are not its value.
    """
    tpl = _template(template)
    logical_id = _function_id(function)
    props = properties(tpl, logical_id)
    env = copy.deepcopy(props.get("Environment", {}).get("Variables", {}))
    if refs is not None:
        resolved = {k: str(v) for k, v in resolve(env, refs, tpl).items()}
        env = {k: v for k, v in resolved.items() if not _DYNAMIC_REFERENCE.search(v)}
    memory = resolve(props.get("MemorySize", 128), {}, tpl)
    return FunctionSpec(
        logical_id=logical_id,
        handler=props["ImageConfig"]["Command"][0],
        timeout=int(props.get("Timeout", 3)),
        memory=int(memory),
        env=env,
    )


def function_env(
    function: str,
    refs: Mapping[str, Any] | None = None,
    template: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A function's environment variables; see ``function_spec`` for ``refs``.

    ``function_env("processor", {"Bucket": "b", "Table": "t", "Queue": url, ...})``
    """
    return function_spec(function, refs, template).env


def handlers(template: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Logical id -> handler ("module.attribute") of every image-packaged function."""
    out: dict[str, str] = {}
    for logical_id, res in resources(template, "AWS::Lambda::Function").items():
        command = res.get("Properties", {}).get("ImageConfig", {}).get("Command")
        if command:
            out[logical_id] = command[0]
    return out


def event_source(
    template: Mapping[str, Any] | None = None, function: str = "processor"
) -> dict[str, Any]:
    """Properties of the event source mapping that feeds ``function``, parameters resolved."""
    tpl = _template(template)
    logical_id = _function_id(function)
    for res in resources(tpl, "AWS::Lambda::EventSourceMapping").values():
        props = res["Properties"]
        if references(props["FunctionName"]) == {logical_id}:
            resolved: dict[str, Any] = resolve(
                {k: v for k, v in props.items() if k not in ("FunctionName", "EventSourceArn")},
                {},
                tpl,
            )
            resolved["EventSource"] = references(props["EventSourceArn"]).pop()
            return resolved
    raise KeyError(f"no event source mapping invokes {logical_id}")
