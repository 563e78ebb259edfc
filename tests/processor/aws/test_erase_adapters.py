"""Erasing against moto (in-process ``mock_aws``): S3 versions, the paths recorded on the
invalidations queue and flushed into CloudFront invalidations, the adapters' retries on
CloudFront's "later" answers, and the pure path coalescing."""

from __future__ import annotations

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from processor.aws.cloudfront import CloudFrontInvalidator
from processor.aws.s3 import S3ObjectStore
from processor.aws.sqs import InvalidationQueue, SqsQueue
from processor.core.cdn import MAX_WILDCARDS_PER_REQUEST, batches, coalesce
from processor.core.errors import AwsServiceError, CdnBusy, TransientError
from processor.core.keys import image_id
from processor.entrypoints.flush import flush
from processor.service.erase import Eraser
from tests.aws import BUCKET, REGION

pytestmark = pytest.mark.integration


class TooManyInProgress:
    """A 'before-call' hook: CloudFront's answer to a bulk delete, for the first ``n`` calls.

    before-call, not before-send: mock_aws answers at before-send itself, first.
    """

    def __init__(self, n: int) -> None:
        self.remaining = n
        self.injected = 0

    def __call__(self, **_: object) -> tuple[object, dict[str, object]] | None:
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        self.injected += 1
        http = AWSResponse("https://cloudfront.amazonaws.com", 400, {}, None)
        return http, {
            "Error": {"Code": "TooManyInvalidationsInProgress", "Message": "in progress"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }


def inject(client: object, fault: TooManyInProgress) -> TooManyInProgress:
    client.meta.events.register("before-call.cloudfront.CreateInvalidation", fault)  # type: ignore[attr-defined]
    return fault


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        cloudfront = boto3.client("cloudfront", region_name=REGION)
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "test",
                "Comment": "test",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "renditions",
                            "DomainName": f"{BUCKET}.s3.amazonaws.com",
                            "OriginPath": "/public",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "renditions",
                    "ViewerProtocolPolicy": "https-only",
                    "MinTTL": 0,
                },
            }
        )["Distribution"]["Id"]
        yield s3, cloudfront, distribution


def test_versions_are_listed_and_deleted_for_good(aws):
    s3 = aws[0]
    store = S3ObjectStore(s3)
    s3.put_object(Bucket=BUCKET, Key="raw/a/cat.jpg", Body=b"one")
    s3.put_object(Bucket=BUCKET, Key="raw/a/cat.jpg", Body=b"two")
    s3.put_object(Bucket=BUCKET, Key="raw/a/cat.jpg.txt", Body=b"other key")
    s3.delete_object(Bucket=BUCKET, Key="raw/a/cat.jpg")

    versions = [v for v in store.list_versions(BUCKET, "raw/a/cat.jpg") if v.key == "raw/a/cat.jpg"]
    assert sorted((v.is_delete_marker, v.is_latest) for v in versions) == [
        (False, False),
        (False, False),
        (True, True),
    ]
    store.delete_versions(BUCKET, versions)

    left = s3.list_object_versions(Bucket=BUCKET, Prefix="raw/")
    assert [v["Key"] for v in left.get("Versions", [])] == ["raw/a/cat.jpg.txt"]
    assert left.get("DeleteMarkers", []) == []


def test_the_eraser_records_its_paths_then_purges_and_the_flusher_invalidates_them(aws):
    s3, cloudfront, distribution = aws
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="invalidations")["QueueUrl"]
    store = S3ObjectStore(s3)
    iid = image_id(BUCKET, "raw/a/cat.jpg")
    keys = [
        f"public/thumbs/{iid}-v1.webp",
        f"public/thumbs/{iid}-v2.webp",
        f"public/big/{iid}-v2.jpg",
    ]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"r")
    other = f"public/thumbs/{image_id(BUCKET, 'raw/b/dog.jpg')}-v1.webp"
    s3.put_object(Bucket=BUCKET, Key=other, Body=b"another image")
    s3.put_object(Bucket=BUCKET, Key="raw/a/cat.jpg", Body=b"o")
    s3.delete_object(Bucket=BUCKET, Key="raw/a/cat.jpg")
    eraser = Eraser(
        store=store,
        cdn=InvalidationQueue(SqsQueue(sqs, url)),
        bucket=BUCKET,
        public_prefix="public/",
    )

    erased = eraser.erase(iid, "raw/a/cat.jpg", ["thumbs", "big"])

    assert erased.versions == 5  # three renditions, the original and its delete marker
    left = s3.list_object_versions(Bucket=BUCKET)
    assert [v["Key"] for v in left.get("Versions", [])] == [other]
    assert left.get("DeleteMarkers", []) == []
    # the paths wait on the queue, one message for the erase; the flusher sends them
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    record = {"messageId": message["MessageId"], "body": message["Body"]}
    done = flush([record], CloudFrontInvalidator(cloudfront, distribution))
    assert done.failed == () and done.malformed == 0
    (summary,) = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"][
        "Items"
    ]
    batch = cloudfront.get_invalidation(DistributionId=distribution, Id=summary["Id"])
    paths = batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
    assert sorted(paths) == sorted("/" + k.removeprefix("public/") for k in keys)


def test_an_erase_whose_paths_cannot_be_recorded_purges_nothing(aws):
    # GIVEN an invalidations queue that is gone (a broken setup, an SQS outage)
    s3 = aws[0]
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="invalidations")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    iid = image_id(BUCKET, "raw/a/cat.jpg")
    s3.put_object(Bucket=BUCKET, Key=f"public/thumbs/{iid}-v1.webp", Body=b"r")
    eraser = Eraser(
        store=S3ObjectStore(s3),
        cdn=InvalidationQueue(SqsQueue(sqs, url)),
        bucket=BUCKET,
        public_prefix="public/",
    )
    # WHEN the image is erased, THEN the send fails with a retryable error ...
    with pytest.raises(AwsServiceError) as raised:
        eraser.erase(iid, None, ["thumbs"])
    assert raised.value.retryable
    # ... before anything was purged: the retry finds the same keys and sends their paths
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="public/").get("Versions", [])
    assert [v["Key"] for v in versions] == [f"public/thumbs/{iid}-v1.webp"]


def test_cloudfront_says_later_is_retried_with_backoff(aws):
    _, cloudfront, distribution = aws
    fault = inject(cloudfront, TooManyInProgress(2))
    slept: list[float] = []
    invalidator = CloudFrontInvalidator(cloudfront, distribution, sleep=slept.append)

    invalidator.invalidate(["/thumbs/a.webp"])

    assert fault.injected == 2 and len(slept) == 2
    assert all(0 <= s <= 2 for s in slept)  # full jitter under 1 s, then 2 s
    items = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert items["Quantity"] == 1


def test_cloudfront_refusing_past_the_retries_is_transient(aws):
    _, cloudfront, distribution = aws
    inject(cloudfront, TooManyInProgress(10))
    invalidator = CloudFrontInvalidator(cloudfront, distribution, attempts=3, sleep=lambda _: None)
    # CdnBusy: a TransientError; the flusher fails its batch, which comes back minutes later.
    with pytest.raises(CdnBusy, match="TooManyInvalidationsInProgress after 3 tries"):
        invalidator.invalidate(["/thumbs/a.webp"])
    assert issubclass(CdnBusy, TransientError)


def test_a_wrong_distribution_is_not_retried(aws):
    _, cloudfront, _ = aws
    invalidator = CloudFrontInvalidator(cloudfront, "ENOSUCH", sleep=lambda _: None)
    with pytest.raises(AwsServiceError):
        invalidator.invalidate(["/thumbs/a.webp"])


def test_few_paths_stay_exact_many_fold_into_one_wildcard_per_image_and_folder():
    ids = [image_id("b", f"raw/{n}.jpg") for n in range(20)]
    few = [f"thumbs/{ids[0]}-v{n}.webp" for n in range(3)]
    assert coalesce(few) == sorted("/" + k for k in few)
    many = [f"{folder}/{i}-v{n}.{ext}" for i in ids for folder in ("thumbs", "big")
            for n in range(2) for ext in ("webp", "jpg")]  # fmt: skip
    folded = coalesce(many)
    assert len(folded) == 40 and all(p.endswith("*") for p in folded)
    assert f"/thumbs/{ids[0]}*" in folded
    # every original path is covered by exactly one wildcard
    for key in many:
        assert sum(("/" + key).startswith(p[:-1]) for p in folded) == 1


def test_requests_stay_within_cloudfronts_wildcard_bound():
    wild = [f"/thumbs/{n:026d}*" for n in range(40)]
    split = batches(wild)
    assert [len(b) for b in split] == [15, 15, 10]
    assert all(sum(p.endswith("*") for p in b) <= MAX_WILDCARDS_PER_REQUEST for b in split)
    assert batches(["/a", "/b"]) == [["/a", "/b"]]
