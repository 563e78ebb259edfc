"""Where the template goes when it is too big to send inline: a private bucket of the deploy's.

CloudFormation takes at most 51,200 bytes as TemplateBody; up to 1 MB it reads the template
from S3 (TemplateURL), with the deployer's rights. The deploy keeps one bucket per stack for
that, ``<stack>-cfn-<account>-<region>``: created when first needed (private: Block Public
Access, bucket-owner objects, SSE-S3, templates expire after 30 days; no bucket policy, so
nothing but the account's own IAM principals can read it), reused after.
Each upload is named after the body's hash: a redeploy of the same template rewrites the same
bytes, and a stack update never reads an object another deploy is replacing.
"""

from __future__ import annotations

import hashlib
from typing import Any, TextIO

from infra.deploy.plan import Plan
from infra.errors import DeployError

# CloudFormation's limits: inline (TemplateBody), and read from S3 (TemplateURL).
MAX_TEMPLATE_BODY_BYTES = 51_200
MAX_TEMPLATE_URL_BYTES = 1_000_000
PREFIX = "templates/"
EXPIRE_DAYS = 30


def artifacts_bucket(plan: Plan) -> str:
    """At most 63 characters: a 30-character stack name, an account and the longest region."""
    return f"{plan.stack_name}-cfn-{plan.account}-{plan.region}"


def template_source(s3: Any, plan: Plan, body: str, out: TextIO) -> dict[str, str]:
    """``{"TemplateBody": ...}`` when it fits inline, else the body uploaded, as TemplateURL."""
    size = len(body.encode())
    if size <= MAX_TEMPLATE_BODY_BYTES:
        return {"TemplateBody": body}
    if size > MAX_TEMPLATE_URL_BYTES:
        raise DeployError(
            f"the template is {size} bytes as compact JSON, over CloudFormation's "
            f"{MAX_TEMPLATE_URL_BYTES} bytes even from S3"
        )
    bucket = artifacts_bucket(plan)
    _ensure_bucket(s3, bucket, plan, out)
    key = f"{PREFIX}{hashlib.sha256(body.encode()).hexdigest()[:32]}.json"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body.encode(),
        ContentType="application/json",
        ServerSideEncryption="AES256",
        ExpectedBucketOwner=plan.account,
    )
    out.write(f"template     {size} bytes: over the inline limit, sent as s3://{bucket}/{key}\n")
    return {"TemplateURL": f"https://{bucket}.s3.{plan.region}.amazonaws.com/{key}"}


def _ensure_bucket(s3: Any, bucket: str, plan: Plan, out: TextIO) -> None:
    from processor.aws.errors import error_code  # botocore is loaded by now

    try:
        # ExpectedBucketOwner: a bucket of that name in someone else's account is refused,
        # never written to.
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=plan.account)
        return
    except Exception as e:
        code = error_code(e)
        if code in ("403", "AccessDenied"):
            raise DeployError(
                f"bucket {bucket} exists but is not this account's (or not readable): "
                "deploy under another --stack-name"
            ) from e
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    out.write(f"artifacts    creating s3://{bucket} (private) for the template\n")
    create: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
    if plan.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": plan.region}
    s3.create_bucket(**create)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-templates",
                    "Status": "Enabled",
                    "Filter": {"Prefix": PREFIX},
                    "Expiration": {"Days": EXPIRE_DAYS},
                }
            ]
        },
    )
