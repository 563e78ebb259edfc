"""Lambda entry point: ``api.handler.lambda_handler`` (API Gateway HTTP API, payload 2.0).

The handler is ``Mangum(create_app(behind_gateway=True), lifespan="off")``, built on the first
event and reused while the container is warm. Importing this module stays cheap (stdlib
only): FastAPI alone takes ~0.5 s to import on a small CPU, and the first event pays that
wherever it happens.
With provisioned concurrency or SnapStart the init phase is prepaid, so it is built at import
there instead.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any


@cache
def get_handler() -> Any:
    """The Mangum adapter around the app, settings validated (ConfigError names the variable).

    Tests call ``get_handler.cache_clear()`` after changing the environment.
    """
    from mangum import Mangum
    from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

    from api.app import create_app
    from api.problems import PROBLEM_JSON

    # Errors are text too: without this Mangum base64-encodes problem documents.
    text_types = [*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON]
    # Behind API Gateway: its authorisers have checked the caller (IMGPIPE_AUTH_MODE=gateway).
    app = create_app(behind_gateway=True)
    return Mangum(app, lifespan="off", text_mime_types=text_types)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = get_handler()(event, context)
    return response


if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in {"provisioned-concurrency", "snap-start"}:
    get_handler()
