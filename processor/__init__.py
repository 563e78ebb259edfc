"""The processor: S3 uploads to renditions and records. Its folders are its layers, each
importing only those below it (pyproject.toml's import-linter contracts check it):

- ``entrypoints/``: the Lambda shell (handler, batch runner, metrics, composition root);
- ``service/`` (use cases on ports), ``imaging/`` (the engine) and ``aws/`` (adapters), side by
  side: none imports another;
- ``rules/``: pure decisions (plan, cost, decide, pacing, metadata);
- ``core/``: the shared kernel, also used by the API and the tools.
"""
