"""The deployer's documented IAM policy against what CloudFormation's handlers call.

Every resource type the template uses has its handlers' permissions (create, read, update,
delete; tests/infra/handler_permissions.py says where they come from) allowed by the policy in
docs/deploy.md, on the ARN the resource gets in a stack named ``imgpipe``. Permissions a
handler needs only for a property the template does not set are listed below with that
property, and the test checks the template indeed leaves it unset.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from tests.infra import handler_permissions as hp
from tests.infra.conftest import ROOT

pytestmark = pytest.mark.unit

REGION, ACCOUNT, API = "eu-west-1", "123456789012", "a1b2c3d4e5"
_APIS = f"arn:aws:apigateway:{REGION}::/apis/{API}"
_ROLE = f"arn:aws:iam::{ACCOUNT}:role/imgpipe-ProcessorRole-AbCdEf123456"
_CF = f"arn:aws:cloudfront::{ACCOUNT}"

# The ARN each type's own-service actions act on (named as CloudFormation names them for a
# stack called imgpipe), and the ARN of what it hands on (a function's role).
ARNS: dict[str, dict[str, str]] = {
    "AWS::ApiGatewayV2::Api": {"apigateway": _APIS},
    "AWS::ApiGatewayV2::Authorizer": {"apigateway": f"{_APIS}/authorizers/abc123"},
    "AWS::ApiGatewayV2::Integration": {"apigateway": f"{_APIS}/integrations/abc123"},
    "AWS::ApiGatewayV2::Route": {"apigateway": f"{_APIS}/routes/abc123"},
    "AWS::ApiGatewayV2::Stage": {"apigateway": f"{_APIS}/stages/$default"},
    "AWS::CloudFront::CachePolicy": {"cloudfront": f"{_CF}:cache-policy/0123-abcd"},
    "AWS::CloudFront::Distribution": {"cloudfront": f"{_CF}:distribution/E1ABCDEF"},
    "AWS::CloudFront::OriginAccessControl": {"cloudfront": f"{_CF}:origin-access-control/E2A"},
    "AWS::CloudFront::ResponseHeadersPolicy": {
        "cloudfront": f"{_CF}:response-headers-policy/0123-abcd"
    },
    "AWS::CloudWatch::Alarm": {
        "cloudwatch": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:imgpipe-DeadLettersAlarm-X1"
    },
    "AWS::CloudWatch::Dashboard": {
        "cloudwatch": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/imgpipe-{REGION}-pipeline"
    },
    "AWS::DynamoDB::Table": {
        "dynamodb": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/imgpipe-Table-1A2B3C4D5E6F"
    },
    "AWS::Events::EventBus": {
        "events": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/imgpipe-images"
    },
    "AWS::IAM::Role": {"iam": _ROLE},
    "AWS::Lambda::EventSourceMapping": {
        "lambda": f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:"
        "a1b2c3d4-5678-90ab-cdef-11111EXAMPLE"
    },
    "AWS::Lambda::Function": {
        "lambda": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:imgpipe-processor",
        "iam": _ROLE,
    },
    "AWS::Lambda::Permission": {
        "lambda": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:imgpipe-processor"
    },
    "AWS::Logs::LogGroup": {
        "logs": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/imgpipe-processor:*"
    },
    "AWS::S3::Bucket": {"s3": f"arn:aws:s3:::imgpipe-{ACCOUNT}-{REGION}"},
    "AWS::S3::BucketPolicy": {"s3": f"arn:aws:s3:::imgpipe-{ACCOUNT}-{REGION}"},
    "AWS::SNS::Subscription": {"sns": f"arn:aws:sns:{REGION}:{ACCOUNT}:imgpipe-Topic-X1"},
    "AWS::SNS::Topic": {"sns": f"arn:aws:sns:{REGION}:{ACCOUNT}:imgpipe-Topic-X1"},
    "AWS::SQS::Queue": {"sqs": f"arn:aws:sqs:{REGION}:{ACCOUNT}:imgpipe-Queue-X1"},
    "AWS::SQS::QueuePolicy": {"sqs": f"arn:aws:sqs:{REGION}:{ACCOUNT}:imgpipe-Queue-X1"},
    "AWS::SecretsManager::Secret": {
        "secretsmanager": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:CursorSecret-AbC"
    },
}

# The request context IAM sees: Lambda is the service a function's role is passed to.
CONTEXT = {"AWS::Lambda::Function": {"iam:PassedToService": "lambda.amazonaws.com"}}

# Actions IAM cannot scope to a resource (Service Authorization Reference: no resource type):
# only a "Resource": "*" statement allows them, whatever ARN the test has in mind.
UNSCOPED = {
    "cloudfront:createcachepolicy",
    "cloudfront:createdistribution",
    "cloudfront:createdistributionwithtags",
    "cloudfront:createoriginaccesscontrol",
    "cloudfront:createresponseheaderspolicy",
    "lambda:createeventsourcemapping",
    "logs:createlogdelivery",
    "logs:describelogGroups".lower(),
    "logs:describeresourcepolicies",
    "logs:putresourcepolicy",
    "secretsmanager:getrandompassword",
}

# Permissions a handler calls only for a property this template never sets: type ->
# (property, permissions). Each property is checked to be absent from every such resource.
NOT_NEEDED: dict[str, list[tuple[str, set[str]]]] = {
    "AWS::ApiGatewayV2::Api": [("BodyS3Location", {"s3:getObject"})],
    "AWS::ApiGatewayV2::Authorizer": [("AuthorizerCredentialsArn", {"iam:PassRole"})],
    "AWS::ApiGatewayV2::Integration": [("CredentialsArn", {"iam:PassRole"})],
    "AWS::CloudFront::Distribution": [
        (
            "DistributionConfig.ConnectionMode",
            {"cloudfront:CreateConnectionGroup", "cloudfront:GetConnectionGroup"},
        ),
        ("DistributionConfig.Origins.VpcOriginConfig", {"cloudfront:GetVpcOrigin"}),
        (
            "DistributionConfig.ContinuousDeploymentPolicyId",
            {"cloudfront:UpdateDistributionWithStagingConfig"},
        ),
    ],
    "AWS::DynamoDB::Table": [
        (
            "ImportSourceSpecification",
            {
                "dynamodb:ImportTable",
                "dynamodb:DescribeImport",
                "s3:GetObject",
                "s3:GetObjectMetadata",
                "s3:ListBucket",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
                "logs:PutRetentionPolicy",
                # An import fills the table; a stack's own table starts empty, and the deployer
                # gets no item access to the images' records.
                "dynamodb:Query",
                "dynamodb:UpdateItem",
                "dynamodb:PutItem",
                "dynamodb:GetItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            },
        ),
        (
            "KinesisStreamSpecification",
            {
                "dynamodb:EnableKinesisStreamingDestination",
                "dynamodb:DisableKinesisStreamingDestination",
                "dynamodb:UpdateKinesisStreamingDestination",
                "kinesis:DescribeStream",
                "kinesis:PutRecords",
            },
        ),
        (
            "SSESpecification.KMSMasterKeyId",
            {
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:ListAliases",
                "kms:Encrypt",
                "kms:RevokeGrant",
            },
        ),
        ("ResourcePolicy", {"dynamodb:PutResourcePolicy", "dynamodb:DeleteResourcePolicy"}),
        (
            "ContributorInsightsSpecification",
            {
                "dynamodb:UpdateContributorInsights",
                "iam:CreateServiceLinkedRole",
            },
        ),
        ("TimeToLiveSpecification", {"dynamodb:UpdateTimeToLive"}),
        # Replicas belong to AWS::DynamoDB::GlobalTable; this table has none.
        ("Replicas", {"dynamodb:CreateTableReplica", "dynamodb:AssociateTableReplica"}),
    ],
    "AWS::Events::EventBus": [
        (
            "KmsKeyIdentifier",
            {
                "kms:DescribeKey",
                "kms:GenerateDataKey",
                "kms:Decrypt",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:Encrypt",
            },
        ),
        ("Policy", {"events:PutPermission", "events:RemovePermission"}),
    ],
    "AWS::IAM::Role": [
        ("ManagedPolicyArns", {"iam:AttachRolePolicy"}),
        (
            "PermissionsBoundary",
            {"iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"},
        ),
        ("MaxSessionDuration", {"iam:UpdateRole"}),
        ("Description", {"iam:UpdateRoleDescription"}),
    ],
    "AWS::Lambda::EventSourceMapping": [
        ("KmsKeyArn", {"kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"}),
    ],
    "AWS::Lambda::Function": [
        ("Code.S3Bucket", {"s3:GetObject", "s3:GetObjectVersion"}),
        (
            "VpcConfig",
            {
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
                "ec2:DescribeNetworkInterfaces",
            },
        ),
        (
            "FileSystemConfigs",
            {"elasticfilesystem:DescribeMountTargets", "s3files:ListMountTargets"},
        ),
        (
            "KmsKeyArn",
            {
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey",
            },
        ),
        ("Layers", {"lambda:GetLayerVersion"}),
        ("CapacityProviderConfig", {"lambda:PassCapacityProvider"}),
        (
            "RuntimeManagementConfig",
            {"lambda:AssociateRuntimeAlias", "lambda:PutRuntimeManagementConfig"},
        ),
        (
            "CodeSigningConfigArn",
            {
                "lambda:GetCodeSigningConfig",
                "lambda:PutFunctionCodeSigningConfig",
                "lambda:DeleteFunctionCodeSigningConfig",
            },
        ),
        ("RecursiveLoop", {"lambda:PutFunctionRecursionConfig"}),
        ("FunctionScalingConfig", {"lambda:PutFunctionScalingConfig"}),
    ],
    "AWS::Logs::LogGroup": [
        (
            "DataProtectionPolicy",
            {
                "logs:GetDataProtectionPolicy",
                "logs:PutDataProtectionPolicy",
                "logs:DeleteDataProtectionPolicy",
            },
        ),
        ("KmsKeyId", {"logs:AssociateKmsKey", "logs:DisassociateKmsKey"}),
        (
            "FieldIndexPolicies",
            {"logs:PutIndexPolicy", "logs:DeleteIndexPolicy", "logs:DescribeIndexPolicies"},
        ),
        ("ResourcePolicyDocument", {"logs:DeleteResourcePolicy"}),
        ("BearerTokenAuthenticationEnabled", {"logs:PutBearerTokenAuthentication"}),
        ("DeletionProtectionEnabled", {"logs:PutLogGroupDeletionProtection"}),
        ("LogGroupClass", {"s3:REST.PUT.OBJECT", "firehose:TagDeliveryStream"}),
    ],
    "AWS::S3::Bucket": [
        (
            "ReplicationConfiguration",
            {"iam:PassRole", "s3:PutBucketReplication", "s3:PutReplicationConfiguration"},
        ),
        (
            "MetadataTableConfiguration",
            {
                "s3tables:CreateNamespace",
                "s3tables:CreateTable",
                "s3tables:CreateTableBucket",
                "s3tables:GetTable",
                "s3tables:PutTableBucketPolicy",
                "s3tables:PutTableEncryption",
                "s3tables:PutTablePolicy",
                "s3tables:GetTableMetadataLocation",
                "s3tables:UpdateTableMetadataLocation",
            },
        ),
        ("AccessControl", {"s3:PutObjectAcl"}),
        # Object deletes: only for an ObjectLockConfiguration test object; the deployer never
        # deletes the images.
        ("ObjectLockConfiguration", {"s3:DeleteObject"}),
    ],
    "AWS::SNS::Subscription": [("SubscriptionRoleArn", {"iam:GetRole", "iam:PassRole"})],
    "AWS::SNS::Topic": [
        ("DeliveryStatusLogging", {"iam:GetRole", "iam:PassRole"}),
        ("DataProtectionPolicy", {"sns:PutDataProtectionPolicy"}),
    ],
    "AWS::SecretsManager::Secret": [
        (
            "ReplicaRegions",
            {
                "secretsmanager:ReplicateSecretToRegions",
                "secretsmanager:RemoveRegionsFromReplication",
            },
        ),
    ],
}


def documented_policy() -> dict[str, Any]:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```json\n(.*?)\n```", text, flags=re.S)
    return json.loads(block)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _conditions_hold(statement: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in statement.get("Condition", {}).items():
        if operator != "StringEquals":  # others: not understood here, so not granted
            return False
        for key, wanted in tests.items():
            if context.get(key) not in _listed(wanted):
                return False
    return True


def allowed(policy: dict[str, Any], action: str, arn: str, context: dict[str, str]) -> bool:
    """Whether an Allow statement names the action (IAM's wildcards, any case) on the ARN."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or not _conditions_hold(statement, context):
            continue
        if not any(
            fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(statement["Action"])
        ):
            continue
        if any(fnmatch.fnmatchcase(arn, r) for r in _listed(statement["Resource"])):
            return True
    return False


def _property_set(props: dict[str, Any], path: str) -> bool:
    head, _, rest = path.partition(".")
    node = props.get(head)
    if node is None:
        return False
    if not rest:
        return True
    items = node if isinstance(node, list) else [node]
    return any(isinstance(i, dict) and _property_set(i, rest) for i in items)


def test_the_table_is_the_schemas_cfn_lint_bundles() -> None:
    # A new cfn-lint may bring new handler permissions: regenerate, then fix the policy.
    assert hp.checked_in() == hp.from_schemas(hp.template_types())


def test_the_table_covers_every_type_the_template_uses() -> None:
    assert sorted(hp.checked_in()["types"]) == hp.template_types()
    assert set(ARNS) == set(hp.template_types())


def test_not_needed_permissions_belong_to_properties_the_template_leaves_unset(
    template: dict[str, Any],
) -> None:
    table = hp.checked_in()["types"]
    for name, entries in NOT_NEEDED.items():
        listed = {p for handler in table[name].values() for p in handler}
        for path, permissions in entries:
            assert permissions <= listed, (name, permissions - listed)  # no stale entries
            for logical_id, res in template["Resources"].items():
                if res["Type"] == name:
                    assert not _property_set(res.get("Properties", {}), path), (logical_id, path)


def _missing() -> list[str]:
    policy = documented_policy()
    missing = []
    for name, handlers in hp.checked_in()["types"].items():
        skipped = {p for _, ps in NOT_NEEDED.get(name, []) for p in ps}
        for handler, permissions in handlers.items():
            for permission in permissions:
                if permission in skipped:
                    continue
                service = permission.split(":")[0]
                arn = "*" if permission.lower() in UNSCOPED else ARNS[name].get(service, "*")
                if not allowed(policy, permission, arn, CONTEXT.get(name, {})):
                    missing.append(f"{name} {handler}: {permission} on {arn}")
    return missing


def test_the_policy_allows_every_handler_permission_on_the_resources_arn() -> None:
    missing = _missing()
    assert missing == [], "\n".join(missing)


def test_the_evaluator_refuses_what_the_policy_does_not_grant() -> None:
    policy = documented_policy()
    # The permission a first deploy was refused: tagging the queue's event source mapping.
    esm = ARNS["AWS::Lambda::EventSourceMapping"]["lambda"]
    assert allowed(policy, "lambda:TagResource", esm, {})
    assert not allowed(
        policy,
        "lambda:TagResource",
        esm.replace("imgpipe", "x").replace("event-source-mapping", "layer"),
        {},
    )
    role = ARNS["AWS::IAM::Role"]["iam"]
    assert not allowed(policy, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allowed(policy, "s3:DeleteObject", ARNS["AWS::S3::Bucket"]["s3"] + "/raw/x", {})
