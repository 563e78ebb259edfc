"""The shared core: the record, keys, errors, events, messages, ports, config and settings.

Imports nothing of ours and neither boto3, pyvips nor FastAPI (pyproject.toml's import-linter
contracts check it), so the processor, the API and every tool can share it cheaply.
"""
