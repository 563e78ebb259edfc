"""The whole pipeline on one machine: AWS (moto), resources, the worker and the API.

Start order: AWS endpoint -> resources (from infra/template.yaml) -> the processor's
execution environments (their cold starts) and the SQS worker -> the API under uvicorn with
the CDN stand-in and gallery. ``stop()`` undoes it in reverse; it is safe to call at any
point, including after a failed ``start()``. Everything binds the given host (loopback by
default) and nothing else.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.local import GALLERY_SUBJECT, LOCAL_API_KEY, LOOPBACK_NAMES
from cli.local.aws import FAKE_CREDENTIALS, LOOPBACK, EmbeddedAws
from cli.local.events import EventPrinter, subscribe
from cli.local.invoker import FunctionConfig, ProcessInvoker
from cli.local.oidc import LOCAL_AUDIENCE, LocalIssuer
from cli.local.provision import Provisioned, provision
from cli.local.spec import STACK_NAME, TEMPLATE, StackSpec, load_spec
from cli.local.worker import MappingConfig, SqsWorker
from processor.core.errors import InvocationFailed, StackError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response

log = logging.getLogger(__name__)

# Shards of the image indexes on the embedded AWS (see _parameters).
EMBEDDED_LIST_SHARDS = 1
# At most this many execution environments by default: each is a process running libvips.
DEFAULT_MAX_CONCURRENCY = 4


@dataclass(frozen=True)
class StackOptions:
    host: str = LOOPBACK
    api_port: int = 8000  # 0: any free port
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
    # The processing queue's visibility timeout (s) instead of the template's 900, so that
    # what an invocation did not finish comes back in seconds (tests, trying limits out).
    visibility_timeout_s: int | None = None
    # Print every completion event (a rule on the stack's bus to a queue of its own).
    print_events: bool = False


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


def loopback_hosts(bound: str) -> frozenset[str]:
    """Host names the local API answers to: loopback's, and the address it was bound to."""
    return LOOPBACK_NAMES | {bound}


def allow_hosts(app: FastAPI, hosts: frozenset[str]) -> None:
    """Refuse requests whose Host header names another host (400 ``invalid_host``).

    A page on evil.example that re-points its own DNS name at 127.0.0.1 (DNS rebinding)
    reaches this server as same-origin, but its requests still say ``Host: evil.example``:
    refusing them keeps the gallery page, and the key in it, from that page.
    """
    from urllib.parse import urlsplit

    from api.problems import problem_response

    @app.middleware("http")
    async def check_host(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        host = request.headers.get("host", "")
        name = urlsplit(f"//{host}").hostname or ""
        if name not in hosts:
            return problem_response(
                request, 400, "invalid_host", "this server answers to loopback names only"
            )
        return await call_next(request)


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
        self.api_key = ""
        self._aws: EmbeddedAws | None = None
        self.issuer: LocalIssuer | None = None
        self._socket: socket.socket | None = None
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._invokers: list[ProcessInvoker] = []
        self._events: EventPrinter | None = None
        self._cursor_secret = secrets.token_urlsafe(32)

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
        endpoint = self._start_aws()
        self._socket = bind_socket(opts.host, opts.api_port)
        api_url = f"http://{opts.host}:{self._socket.getsockname()[1]}"

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

        cdn = api_url
        if opts.real_aws and os.environ.get("IMGPIPE_CDN_BASE_URL"):
            cdn = os.environ["IMGPIPE_CDN_BASE_URL"].rstrip("/")
        # Browsers sign in with a token from it, as they would with Cognito or Auth0 in AWS.
        self.issuer = LocalIssuer()
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
        self._start_api()
        return self.urls

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

    def _start_aws(self) -> str | None:
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
        _check_port_free(opts.host, opts.aws_port, "--aws-port")
        self._aws = EmbeddedAws(opts.host, opts.aws_port)
        return self._aws.start()

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
        )

    def _function_environment(
        self, spec: StackSpec, resources: Provisioned, endpoint: str | None
    ) -> dict[str, str]:
        opts = self.options
        env = spec.environment(
            spec.processor,
            queue_url=resources.queue_url,
            dlq_url=resources.dlq_url,
            distribution_id=resources.distribution_id,
        )
        env.update(
            {
                "IMGPIPE_BUCKET": resources.bucket,
                "IMGPIPE_TABLE": resources.table,
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

    def _start_worker(
        self, spec: StackSpec, resources: Provisioned, endpoint: str | None, sqs: Any
    ) -> None:
        opts = self.options
        env = self._function_environment(spec, resources, endpoint)
        # glibc reads MALLOC_ARENA_MAX when a process starts: the children get it from here.
        if "MALLOC_ARENA_MAX" in env:
            os.environ.setdefault("MALLOC_ARENA_MAX", env["MALLOC_ARENA_MAX"])
        function = FunctionConfig(
            handler=spec.processor.handler,
            function_name=spec.function_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{opts.region}:{spec.account}:function:{spec.function_name}"
            ),
            timeout_s=opts.function_timeout_s or float(spec.processor.timeout),
            memory_mb=opts.function_memory_mb or spec.processor.memory,
            environment=env,
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
            ),
        )
        self.worker.start()

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

    def _start_api(self) -> None:
        import uvicorn

        from api.app import create_app
        from cli.local.cdn import create_local_router

        settings = self.api_settings()
        app = create_app(settings)
        allow_hosts(app, loopback_hosts(self.options.host))
        folders = self._rendition_folders()
        assert self.resources is not None
        app.include_router(
            create_local_router(
                settings,
                folders=folders,
                gallery_token=self._gallery_token(settings.admin_scope),
                distribution_id=self.resources.distribution_id or None,
            )
        )
        config = uvicorn.Config(
            app,
            log_level=self.options.api_log_level,
            access_log=self.options.api_log_level in {"debug", "info"},
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        sock = self._socket
        assert sock is not None
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
        )
        thread.start()
        self._server, self._server_thread = server, thread
        while not server.started:
            if not thread.is_alive():
                raise StackError("the API server stopped while starting (see the log above)")
            thread.join(0.05)

    def _gallery_token(self, admin_scope: str) -> Callable[[], str]:
        """The gallery's sign-in: this machine's user, who may change any image (admin)."""
        issuer = self.issuer
        assert issuer is not None  # started before the API
        return lambda: issuer.token(GALLERY_SUBJECT, scopes=[admin_scope])

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
        """False once the API server, the worker or the embedded AWS has died."""
        if self._server_thread is None or not self._server_thread.is_alive():
            return False
        if self._aws is not None and not self._aws.running:
            return False
        if self.issuer is not None and not self.issuer.running:
            return False
        return self.worker is None or self.worker.running

    def stop(self) -> None:
        """Reverse order of start: API, worker and its processes, AWS. Idempotent."""
        server, thread = self._server, self._server_thread
        self._server = self._server_thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(15)
            if thread.is_alive():
                server.force_exit = True
                thread.join(5)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self._events is not None:
            self._events.stop()
            self._events = None
        for invoker in self._invokers:
            invoker.close()
        self._invokers = []
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None
        if self._aws is not None:
            self._aws.stop()
            self._aws = None
