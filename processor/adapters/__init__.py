"""Adapters: the ports of processor/service_ports.py and processor/ports.py, in boto3.

The only modules that talk to AWS. Each one translates SDK errors at its boundary
(processor/adapters/aws_errors.py), so no botocore type reaches the service.
"""
