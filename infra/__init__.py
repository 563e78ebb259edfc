"""Deployment: the CloudFormation template, a reader for it, and the deploy command."""
