"""Adapters: the ports of processor/core/ports.py, in boto3.

The only modules that talk to AWS. Each one translates SDK errors at its boundary
(processor/aws/errors.py), so no botocore type reaches the service.
"""
