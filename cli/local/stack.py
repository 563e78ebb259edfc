"""The whole pipeline on one machine: AWS (moto), resources, the worker and the API.

Start order: the API's and the CDN stand-in's sockets (their origins are what the embedded
AWS lets browsers in from) -> AWS endpoint -> resources (from infra/template.yaml) -> the
processor's execution environments (their cold starts) and the SQS worker -> the API with the
gallery, and the CDN stand-in on a port of its own, under uvicorn. ``stop()`` undoes it in
reverse; it is safe to call at any point, including after a failed ``start()``. Everything
binds the given host (loopback by default) and nothing else, and answers loopback names only.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cli.local import GALLERY_SUBJECT, LOCAL_API_KEY, LOOPBACK_NAMES
from cli.local.aws import FAKE_CREDENTIALS, LOOPBACK, EmbeddedAws
from cli.local.events import EventPrinter, subscribe
from cli.local.guard import (
    API_MAX_BODY_BYTES,
    Refused,
    content_length,
    host_name,
    is_loopback_name,
    page_origins,
)
from cli.local.invoker import FunctionConfig, ProcessInvoker
from cli.local.oidc import LOCAL_AUDIENCE, LocalIssuer
from cli.local.provision import Provisioned, provision
from cli.local.spec import STACK_NAME, TEMPLATE, StackSpec, edge_response_headers, load_spec
from cli.local.worker import MappingConfig, SqsWorker
from infra.template import FunctionSpec
from processor.core.errors import InvocationFailed, StackError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

# Shards of the image indexes on the embedded AWS (see _parameters).
EMBEDDED_LIST_SHARDS = 1
# At most this many execution environments by default: each is a process running libvips.
DEFAULT_MAX_CONCURRENCY = 4
# A presigned POST's fields and multipart framing around the file, with room to spare.
FORM_FIELDS_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StackOptions:
    host: str = LOOPBACK
    api_port: int = 8000  # 0: any free port
    # The CDN stand-in's port: an origin of its own, as CloudFront's domain is. 0: any free.
    cdn_port: int = 8001
    aws_port: int = 4566  # the embedded moto server's port; 0: any free port
    # LocalStack (or another endpoint) instead of the embedded moto server.
    endpoint_url: str | None = None
    # Real AWS: no endpoint, no provisioning; the resources named by IMGPIPE_* variables.
    real_aws: bool = False
    region: str = "us-east-1"
    stack_name: str = STACK_NAME
    template: Path = TEMPLATE
    api_key: str | None = None
    # Execution environments of the processor (the mapping's maximum concurrency).
    concurrency: int | None = None
    worker: bool = True
    # Log level of the processor function (Powertools' JSON lines) and of the API.
    function_log_level: str = "WARNING"
    api_log_level: str = "warning"
    # Overrides of the processor's environment, e.g. limits for a test.
    function_environment: dict[str, str] = field(default_factory=dict)
    # The processor's memory (MB) and timeout (s) instead of the template's: the worker stops
    # an invocation past either, as Lambda does. None: the template's.
    function_memory_mb: int | None = None
    function_timeout_s: float | None = None
    # The processing queue's visibility timeout (s) instead of the template's, so that what
    # an invocation did not finish comes back in seconds (tests, trying limits out).
    visibility_timeout_s: int | None = None
    # Print every completion event (a rule on the stack's bus to a queue of its own).
    print_events: bool = False
    # The flusher's batching window (s) instead of the template's 60: a deleted image leaves
    # the CDN stand-in within seconds. None: the template's.
    invalidation_window_s: float | None = 2.0
    # Exact paths a flush may send before folding (InvalidationExactPaths) instead of the
    # template's 500: a few deletes then fold as a bulk delete does. None: the template's.
    invalidation_exact_paths: int | None = None


@dataclass(frozen=True)
class StackUrls:
    api: str
    aws: str | None  # None for real AWS
    cdn: str
    issuer: str | None = None  # the local OpenID Connect issuer (cli/local/oidc.py)

    @property
    def gallery(self) -> str:
        return self.api + "/"

    @property
    def docs(self) -> str:
        return self.api + "/docs"


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StackError(f"cannot listen on {host}:{port} ({e.strerror}); pick another port") from e
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def _check_port_free(host: str, port: int, flag: str) -> None:
    if port == 0:
        return
    try:
        bind_socket(host, port).close()
    except StackError as e:
        raise StackError(f"{e} with {flag}") from None


class LocalGuard:
    """ASGI middleware in front of the API and the CDN stand-in: loopback Host names only,
    and bodies no larger than API Gateway takes (a chunked one is read here, to the bound).

    A page on evil.example that re-points its own DNS name at 127.0.0.1 (DNS rebinding)
    reaches this server as same-origin, but its requests still say ``Host: evil.example``:
    refusing them (400 ``invalid_host``) keeps the gallery page, and its secret, from it.
    """

    def __init__(self, app: AsgiApp, bound: str, max_body_bytes: int = API_MAX_BODY_BYTES):
        self.app, self.bound, self.max_body_bytes = app, (bound,), max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if not is_loopback_name(host_name(headers.get("host")), self.bound):
                raise Refused(400, "invalid_host", "this server answers to loopback names only")
            declared = content_length(headers.get("content-length"), self.max_body_bytes)
            if declared is None and "chunked" in headers.get("transfer-encoding", "").lower():
                receive = await self._measured(receive)
        except Refused as refused:
            await self._refuse(refused, scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _measured(self, receive: Receive) -> Receive:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                raise Refused(413, "too_large", f"the body is over {self.max_body_bytes} bytes")
            more = bool(message.get("more_body"))
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return replayed

    @staticmethod
    async def _refuse(refused: Refused, scope: Scope, receive: Receive, send: Send) -> None:
        from fastapi import Request

        from api.problems import problem_response

        # Without the Host header: the refused one may not even parse as a URL.
        clean = {**scope, "headers": [h for h in scope["headers"] if h[0].lower() != b"host"]}
        response = problem_response(Request(clean), refused.status, refused.code, refused.reason)
        response.headers["Connection"] = "close"
        await response(clean, receive, send)


def default_concurrency(declared: int | None) -> int:
    cpus = os.cpu_count() or 2
    return max(1, min(declared or DEFAULT_MAX_CONCURRENCY, cpus, DEFAULT_MAX_CONCURRENCY))


class LocalStack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.urls: StackUrls | None = None
        self.resources: Provisioned | None = None
        self.spec: StackSpec | None = None
        self.worker: SqsWorker | None = None
        self.flush_worker: SqsWorker | None = None  # the invalidations queue's flusher
        self.api_key = ""
        self._aws: EmbeddedAws | None = None
        self.issuer: LocalIssuer | None = None
        self._socket: socket.socket | None = None
        self._cdn_socket: socket.socket | None = None
        self._servers: list[tuple[Any, threading.Thread]] = []
        self._invokers: list[ProcessInvoker] = []
        self._flush_invoker: ProcessInvoker | None = None
        self._events: EventPrinter | None = None
        self._cursor_secret = secrets.token_urlsafe(32)
        # What only the gallery page knows: its sign-in at /local/token needs it.
        self.gallery_secret = secrets.token_urlsafe(32)

    # --- start -------------------------------------------------------------------------------

    def start(self) -> StackUrls:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> StackUrls:
        opts = self.options
        self.api_key = opts.api_key or os.environ.get("IMGPIPE_API_KEY") or LOCAL_API_KEY
        if opts.real_aws and self.api_key == LOCAL_API_KEY:
            # The default key is printed in the docs: against real resources it is no key.
            # Refused before anything starts or any AWS call is made.
            raise StackError(
                "--real-aws needs a key of your own: set IMGPIPE_API_KEY or pass --api-key "
                "(at least 16 characters); the default local key is public"
            )
        if opts.host not in LOOPBACK_NAMES:
            log.warning("binding %s: the stack has no real authentication", opts.host)
        if not (opts.real_aws or opts.endpoint_url):
            _check_port_free(opts.host, opts.aws_port, "--aws-port")
        self._socket = bind_socket(opts.host, opts.api_port)
        api_url = self._url(self._socket)
        cdn = os.environ.get("IMGPIPE_CDN_BASE_URL", "").rstrip("/") if opts.real_aws else ""
        if not cdn:
            self._cdn_socket = bind_socket(opts.host, opts.cdn_port)
            cdn = self._url(self._cdn_socket)
        # The gallery is the only page the embedded AWS lets a browser in from.
        endpoint = self._start_aws(pages=page_origins(api_url))

        clients = self._clients(endpoint)
        account = str(clients["sts"].get_caller_identity()["Account"])
        spec = load_spec(
            opts.template,
            stack_name=opts.stack_name,
            region=opts.region,
            account=account,
            # Browsers upload to the bucket from the gallery: this origin, not any.
            parameters=self._parameters(
                spec_path=opts.template, origin=api_url, embedded=self._aws is not None
            ),
        )
        if opts.visibility_timeout_s is not None:
            queue = replace(spec.queue, visibility_timeout=opts.visibility_timeout_s)
            spec = replace(spec, queue=queue)
        self.spec = spec
        if opts.real_aws:
            resources = self._existing_resources(clients["sqs"])
        else:
            resources = provision(clients, spec, region=opts.region, browser_origins=[api_url])
        self.resources = resources

        # Browsers sign in with a token from it, as they would with Cognito or Auth0 in AWS.
        # Against real resources it mints no admin token: the admin scope there is real.
        refused = frozenset({self._admin_scope(spec, resources)}) if opts.real_aws else frozenset()
        self.issuer = LocalIssuer(refused_scopes=refused)
        self.urls = StackUrls(api=api_url, aws=endpoint, cdn=cdn, issuer=self.issuer.start())

        if opts.print_events and resources.event_bus:
            tap = subscribe(
                clients["events"],
                clients["sqs"],
                bus=resources.event_bus,
                queue_name=f"{opts.stack_name}-events-tap",
            )
            self._events = EventPrinter(clients["sqs"], tap, sys.stdout)
            self._events.start()
        if opts.worker:
            self._start_worker(spec, resources, endpoint, clients["sqs"])
        self._start_servers()
        return self.urls

    def _url(self, sock: socket.socket) -> str:
        host = self.options.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{sock.getsockname()[1]}"

    @staticmethod
    def _admin_scope(spec: StackSpec, resources: Provisioned) -> str:
        """The scope the API takes for an admin's (the template's, else the API's default)."""
        from api.settings import ApiSettings

        env = spec.environment(spec.api, queue_url=resources.queue_url, dlq_url=resources.dlq_url)
        default = str(ApiSettings.model_fields["admin_scope"].default)
        return env.get("IMGPIPE_ADMIN_SCOPE") or default

    @staticmethod
    def _parameters(*, spec_path: Path, origin: str, embedded: bool) -> dict[str, str]:
        from infra import template as cfn

        declared = cfn.load_template(spec_path).get("Parameters", {})
        values = {"CorsAllowedOrigin": origin}
        if embedded:
            # A listing queries every shard (each for a share of the page and a margin), and
            # the embedded AWS spends real CPU per query and per item: 32 shards made each
            # gallery poll 32 queries. Its table is new at every start, so it can have its own
            # count. LocalStack and real AWS keep the deployed value (a lower one hides shards).
            values["ListShards"] = str(EMBEDDED_LIST_SHARDS)
        return {k: v for k, v in values.items() if k in declared}

    def _start_aws(self, *, pages: frozenset[str]) -> str | None:
        from infra import template as cfn

        opts = self.options
        if opts.real_aws:
            return None
        if opts.endpoint_url:
            if "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_PROFILE" not in os.environ:
                os.environ.update(FAKE_CREDENTIALS)  # LocalStack takes any; given ones win
            return opts.endpoint_url.rstrip("/")
        # The embedded AWS takes any credentials: never look for (or use) real ones.
        os.environ.update(FAKE_CREDENTIALS)
        os.environ.pop("AWS_PROFILE", None)
        # The largest body it takes: an upload at the template's limit, with its form fields.
        defaults = cfn.parameter_defaults(cfn.load_template(opts.template))
        max_body = int(defaults.get("MaxUploadBytes", 0)) + FORM_FIELDS_BYTES
        self._aws = EmbeddedAws(opts.host, opts.aws_port, pages=pages, max_body_bytes=max_body)
        return self._aws.start()

    def reset_aws(self) -> None:
        """Empty the embedded AWS (moto's reset, closed to everyone but this stack)."""
        if self._aws is None:
            raise StackError("this stack has no embedded AWS to reset")
        self._aws.reset()

    def _clients(self, endpoint: str | None) -> dict[str, Any]:
        from processor.aws.clients import FOR_WORK, aws_client

        timeouts = replace(FOR_WORK, pool=max(10, (self.options.concurrency or 4) * 2))
        return {
            name: aws_client(
                name, region=self.options.region, endpoint_url=endpoint, timeouts=timeouts
            )
            for name in ("s3", "sqs", "dynamodb", "sts", "cloudfront", "events")
        }

    def _existing_resources(self, sqs: Any) -> Provisioned:
        from processor.core.errors import ConfigError
        from processor.core.settings import AwsSettings, load

        try:
            settings = load(AwsSettings)
        except ConfigError as e:
            raise StackError(f"--real-aws needs IMGPIPE_BUCKET and IMGPIPE_TABLE: {e}") from e
        if not settings.queue_url:
            raise StackError("--real-aws needs IMGPIPE_QUEUE_URL (the stack's QueueUrl output)")

        def arn(url: str) -> str:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            return str(attrs["Attributes"]["QueueArn"])

        return Provisioned(
            bucket=settings.bucket,
            table=settings.table,
            queue_url=settings.queue_url,
            queue_arn=arn(settings.queue_url),
            dlq_url=settings.dlq_url or "",
            dlq_arn=arn(settings.dlq_url) if settings.dlq_url else "",
            distribution_id=os.environ.get("IMGPIPE_DISTRIBUTION_ID", ""),
            # The deployed flusher consumes it: no local one runs against real AWS.
            invalidation_queue_url=os.environ.get("IMGPIPE_INVALIDATION_QUEUE_URL", ""),
        )

    def _function_environment(
        self, spec: StackSpec, resources: Provisioned, endpoint: str | None
    ) -> dict[str, str]:
        opts = self.options
        env = self._lambda_environment(spec, spec.processor, resources, endpoint)
        env.update({"IMGPIPE_BUCKET": resources.bucket, "IMGPIPE_TABLE": resources.table})
        if resources.event_bus:
            env["IMGPIPE_EVENT_BUS"] = resources.event_bus
        else:
            env.pop("IMGPIPE_EVENT_BUS", None)  # --real-aws: the deployed one, if it is set
            if os.environ.get("IMGPIPE_EVENT_BUS"):
                env["IMGPIPE_EVENT_BUS"] = os.environ["IMGPIPE_EVENT_BUS"]
        if self.urls is not None:
            env["IMGPIPE_CDN_BASE_URL"] = self.urls.cdn  # what event views link to
        env.update(opts.function_environment)
        return env

    def _lambda_environment(
        self,
        spec: StackSpec,
        function: FunctionSpec,
        resources: Provisioned,
        endpoint: str | None,
    ) -> dict[str, str]:
        """A function's template environment pointed at this stack, as Lambda runs it here."""
        opts = self.options
        env = spec.environment(
            function,
            queue_url=resources.queue_url,
            dlq_url=resources.dlq_url,
            distribution_id=resources.distribution_id,
            invalidation_queue_url=resources.invalidation_queue_url,
        )
        env.update(
            {
                "AWS_REGION": opts.region,
                "AWS_DEFAULT_REGION": opts.region,
                # No X-Ray daemon and no CloudWatch agent here: tracing off, metrics (EMF
                # lines on stdout, read by CloudWatch only) off.
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "LOG_LEVEL": opts.function_log_level,
                "POWERTOOLS_LOG_LEVEL": opts.function_log_level,
            }
        )
        if endpoint:
            env["IMGPIPE_ENDPOINT_URL"] = endpoint
        return env

    def _function_config(
        self, spec: StackSpec, function: FunctionSpec, name: str, env: dict[str, str]
    ) -> FunctionConfig:
        opts = self.options
        return FunctionConfig(
            handler=function.handler,
            function_name=name,
            invoked_function_arn=f"arn:aws:lambda:{opts.region}:{spec.account}:function:{name}",
            timeout_s=float(function.timeout),
            memory_mb=function.memory,
            environment=env,
        )

    def _start_flusher(
        self, spec: StackSpec, resources: Provisioned, endpoint: str | None, sqs: Any
    ) -> None:
        """The flusher on the invalidations queue, as its mapping says, with this stack's
        window; one execution environment is plenty here. Not against real AWS, where the
        deployed one consumes the queue."""
        mapping = spec.flush_mapping
        if (
            spec.flush is None
            or mapping is None
            or self.options.real_aws
            or not (resources.invalidation_queue_url and resources.distribution_id)
        ):
            return
        env = self._lambda_environment(spec, spec.flush, resources, endpoint)
        if self.options.invalidation_exact_paths is not None:
            env["IMGPIPE_EXACT_PATHS"] = str(self.options.invalidation_exact_paths)
        name = f"{spec.stack_name}-flush"
        invoker = ProcessInvoker(self._function_config(spec, spec.flush, name, env))
        self._flush_invoker = invoker
        try:
            invoker.start()
        except InvocationFailed as e:
            raise StackError(f"the flusher cannot start: {e}") from e
        window = self.options.invalidation_window_s
        self.flush_worker = SqsWorker(
            sqs,
            [invoker],
            MappingConfig(
                queue_url=resources.invalidation_queue_url,
                queue_arn=resources.invalidation_queue_arn,
                region=self.options.region,
                batch_size=mapping.batch_size,
                batching_window_s=mapping.batching_window_s if window is None else window,
                report_batch_item_failures=mapping.report_batch_item_failures,
                visibility_timeout_s=(
                    spec.invalidation_queue.visibility_timeout if spec.invalidation_queue else None
                ),
            ),
        )
        self.flush_worker.start()

    def _start_worker(
        self, spec: StackSpec, resources: Provisioned, endpoint: str | None, sqs: Any
    ) -> None:
        opts = self.options
        env = self._function_environment(spec, resources, endpoint)
        # glibc reads MALLOC_ARENA_MAX when a process starts: the children get it from here.
        if "MALLOC_ARENA_MAX" in env:
            os.environ.setdefault("MALLOC_ARENA_MAX", env["MALLOC_ARENA_MAX"])
        function = replace(
            self._function_config(spec, spec.processor, spec.function_name, env),
            timeout_s=opts.function_timeout_s or float(spec.processor.timeout),
            memory_mb=opts.function_memory_mb or spec.processor.memory,
        )
        count = opts.concurrency or default_concurrency(spec.mapping.max_concurrency)
        self._invokers = [ProcessInvoker(function) for _ in range(count)]
        # Cold starts in parallel, before any event: a broken handler fails the start.
        try:
            with ThreadPoolExecutor(max_workers=count) as pool:
                list(pool.map(lambda invoker: invoker.start(), self._invokers))
        except InvocationFailed as e:
            raise StackError(f"the processor cannot start: {e}") from e
        self.worker = SqsWorker(
            sqs,
            self._invokers,
            MappingConfig(
                queue_url=resources.queue_url,
                queue_arn=resources.queue_arn,
                region=opts.region,
                batch_size=spec.mapping.batch_size,
                batching_window_s=spec.mapping.batching_window_s,
                report_batch_item_failures=spec.mapping.report_batch_item_failures,
                visibility_timeout_s=None if opts.real_aws else spec.queue.visibility_timeout,
            ),
        )
        self.worker.start()
        self._start_flusher(spec, resources, endpoint, sqs)

    def api_settings(self) -> Any:
        """The API's settings: the template's API environment, pointed at this stack."""
        from api.settings import ApiSettings

        spec, resources, urls = self.spec, self.resources, self.urls
        assert spec is not None and resources is not None and urls is not None
        values: dict[str, Any] = {}
        env = spec.environment(spec.api, queue_url=resources.queue_url, dlq_url=resources.dlq_url)
        for name, value in env.items():
            field_name = name.removeprefix("IMGPIPE_").lower()
            if name.startswith("IMGPIPE_") and field_name in ApiSettings.model_fields:
                values[field_name] = value
        values.update(
            bucket=resources.bucket,
            table=resources.table,
            queue_url=resources.queue_url,
            dlq_url=resources.dlq_url or None,
            endpoint_url=urls.aws,
            AWS_REGION=self.options.region,
            cdn_base_url=urls.cdn,
            # In AWS API Gateway's authorisers check the key and tokens; locally the API does.
            auth_mode="api_key",
            api_key=self.api_key,
            jwt_issuer=urls.issuer,
            jwt_audience=[LOCAL_AUDIENCE],
            # Cursors live as long as this stack's in-memory state: a fresh key per start.
            cursor_secret=self._cursor_secret,
        )
        # model_validate, not ApiSettings(): these values, not the process environment.
        return ApiSettings.model_validate(values)

    def _start_servers(self) -> None:
        """The API with the gallery, and the CDN stand-in on its own socket (when it has one)."""
        from api.app import create_app
        from cli.local.cdn import create_cdn_app
        from cli.local.site import create_gallery_router

        settings = self.api_settings()
        app = create_app(settings)
        app.include_router(
            create_gallery_router(
                gallery_token=self._gallery_token(settings.admin_scope),
                secret=self.gallery_secret,
            )
        )
        assert self._socket is not None and self.resources is not None and self.spec is not None
        self._serve(app, self._socket, "api")
        if self._cdn_socket is not None:
            cdn = create_cdn_app(
                settings,
                folders=self._rendition_folders(),
                distribution_id=self.resources.distribution_id or None,
                edge_headers=edge_response_headers(self.spec.template),
                on_demand=self._on_demand(),
            )
            self._serve(cdn, self._cdn_socket, "cdn")

    def _on_demand(self) -> Any:
        """The on-demand function's service, with the processor's environment (the template
        gives both functions the same), run in the CDN stand-in's process on a miss."""
        from processor.entrypoints.ondemand import build
        from processor.entrypoints.settings import ProcessorSettings

        assert self.spec is not None and self.resources is not None and self.urls is not None
        env = self._function_environment(self.spec, self.resources, self.urls.aws)
        values: dict[str, Any] = {
            name.removeprefix("IMGPIPE_").lower(): value
            for name, value in env.items()
            if name.startswith("IMGPIPE_")
            and name.removeprefix("IMGPIPE_").lower() in ProcessorSettings.model_fields
        }
        values["AWS_REGION"] = self.options.region
        return build(ProcessorSettings.model_validate(values))

    def _serve(self, app: Any, sock: socket.socket, name: str) -> None:
        import uvicorn

        config = uvicorn.Config(
            LocalGuard(app, self.options.host),
            log_level=self.options.api_log_level,
            access_log=self.options.api_log_level in {"debug", "info"},
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{name}", daemon=True
        )
        thread.start()
        self._servers.append((server, thread))
        while not server.started:
            if not thread.is_alive():
                raise StackError(f"the {name} server stopped while starting (see the log above)")
            thread.join(0.05)

    def _gallery_token(self, admin_scope: str) -> Callable[[], str]:
        """The gallery's sign-in: this machine's user. On the embedded AWS (or LocalStack),
        whose data any local process can reach anyway, an admin; against real AWS only the
        uploader of its own uploads."""
        issuer = self.issuer
        assert issuer is not None  # started before the API
        scopes = [] if self.options.real_aws else [admin_scope]
        return lambda: issuer.token(GALLERY_SUBJECT, scopes=scopes)

    def _rendition_folders(self) -> list[str]:
        """Folders the processor writes renditions to: the CDN stand-in serves exactly those."""
        from processor.core.config import EngineConfig

        raw = self.options.function_environment.get("IMGPIPE_RENDITIONS")
        config = EngineConfig.from_json(f'{{"renditions": {raw}}}') if raw else EngineConfig()
        return sorted({r.folder for r in config.renditions})

    # --- run and stop ------------------------------------------------------------------------

    @property
    def environments(self) -> int:
        """How many processor execution environments are running."""
        return len(self._invokers)

    @property
    def invokers(self) -> tuple[ProcessInvoker, ...]:
        """The processor's execution environments (their peak memory, their stops)."""
        return tuple(self._invokers)

    @property
    def healthy(self) -> bool:
        """False once a server (API, CDN stand-in), the worker or the embedded AWS has died."""
        if not self._servers or not all(thread.is_alive() for _, thread in self._servers):
            return False
        if self._aws is not None and not self._aws.running:
            return False
        if self.issuer is not None and not self.issuer.running:
            return False
        workers = [w for w in (self.worker, self.flush_worker) if w is not None]
        return all(w.running for w in workers)

    def stop(self) -> None:
        """Reverse order of start: servers, worker and its processes, AWS. Idempotent."""
        servers, self._servers = self._servers, []
        for server, _ in servers:
            server.should_exit = True
        for server, thread in servers:
            thread.join(15)
            if thread.is_alive():
                server.force_exit = True
                thread.join(5)
        for sock in (self._socket, self._cdn_socket):
            if sock is not None:
                sock.close()
        self._socket = self._cdn_socket = None
        for worker in (self.worker, self.flush_worker):
            if worker is not None:
                worker.stop()
        self.worker = self.flush_worker = None
        if self._events is not None:
            self._events.stop()
            self._events = None
        for invoker in self._invokers:
            invoker.close()
        self._invokers = []
        if self._flush_invoker is not None:
            self._flush_invoker.close()
            self._flush_invoker = None
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None
        if self._aws is not None:
            self._aws.stop()
            self._aws = None
