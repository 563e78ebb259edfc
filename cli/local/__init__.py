"""The local stack: the whole pipeline on one machine, with no AWS account.

- ``aws``: moto's server on loopback (S3, SQS, DynamoDB, SNS, CloudWatch in one endpoint);
- ``spec`` and ``provision``: the resources ``infra/template.yaml`` declares, created with boto3
  (moto's CloudFormation skips bucket notifications, queue policies and alarms);
- ``worker``: what Lambda's SQS event source mapping does, around the real processor handler;
- ``stack``: starts all of it plus the API under uvicorn, and stops it on Ctrl-C or SIGTERM.
"""

# The local stack's API key when IMGPIPE_API_KEY is not set. Not a secret: the stack binds
# loopback only and its embedded AWS takes any credentials; `imgpipe upload` defaults to it.
LOCAL_API_KEY = "imgpipe-local-development-key"

# Host names a local server answers to: any other is a DNS-rebinding page's.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

# The gallery's user: its token (from the local issuer) names it, with the admin scope.
GALLERY_SUBJECT = "local-user"
