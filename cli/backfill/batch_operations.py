"""A backfill as an S3 Batch Operations job: the manifest, and the CreateJob request.

The manifest is a CSV (``Bucket,Key``, keys URL-encoded as Batch Operations requires) of the
objects the paced feed would send, written to ``s3://<pipeline bucket>/backfill/manifests/``;
the job invokes the processor function per object (LambdaInvoke: processor/entrypoints/
batch_operations.py queues it), as the template's BatchOperationsRole, and writes its
completion report under ``backfill/reports/``. The request is checked against botocore's own
model of s3control's CreateJob before it is printed or sent.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote_plus

from cli.backfill.sources import Entry

MANIFEST_PREFIX = "backfill/manifests/"
REPORT_PREFIX = "backfill/reports"
MANIFEST_FORMAT = "S3BatchOperations_CSV_20180820"


def manifest_csv(entries: Iterable[Entry]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entry in entries:
        writer.writerow([entry.bucket, quote_plus(entry.key, safe="/")])
    return out.getvalue().encode("utf-8")


def create_job_request(
    *,
    account: str,
    partition: str,
    bucket: str,
    manifest_key: str,
    manifest_etag: str,
    function_arn: str,
    role_arn: str,
    label: str,
) -> dict[str, Any]:
    """s3control CreateJob's parameters. ClientRequestToken is the manifest's hash, so sending
    the same request twice creates one job."""
    token = hashlib.sha256(f"{manifest_key}:{manifest_etag}".encode()).hexdigest()[:64]
    return {
        "AccountId": account,
        "ConfirmationRequired": True,  # runs once confirmed (console or update-job-status)
        "Operation": {
            "LambdaInvoke": {"FunctionArn": function_arn, "InvocationSchemaVersion": "2.0"}
        },
        "Manifest": {
            "Spec": {"Format": MANIFEST_FORMAT, "Fields": ["Bucket", "Key"]},
            "Location": {
                "ObjectArn": f"arn:{partition}:s3:::{bucket}/{manifest_key}",
                "ETag": manifest_etag.strip('"'),
            },
        },
        "Report": {
            "Bucket": f"arn:{partition}:s3:::{bucket}",
            "Prefix": REPORT_PREFIX,
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "AllTasks",
        },
        "Priority": 10,
        "RoleArn": role_arn,
        "ClientRequestToken": token,
        "Description": f"imgpipe backfill of {label}"[:256],
    }


def validate(request: dict[str, Any]) -> None:
    """botocore's ParamValidationError when the request does not fit s3control's model."""
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("s3control")
    validate_parameters(request, model.operation_model("CreateJob").input_shape)
