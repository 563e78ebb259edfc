"""Run a function image as Lambda runs it, with the Runtime API served by the test.

Like Lambda: the image's own ENTRYPOINT and CMD (the handler), a user that is neither root
nor the image's USER (Lambda picks its own uid; every file must be readable by any user),
a read-only root file system with only /tmp writable (512 MB, Lambda's default ephemeral
storage), the function's memory as the container's limit, no capabilities, and the
environment Lambda gives a function: its own variables, credentials, region and names.
``--network host`` because the engine has no bridge: that is how the container reaches the
test's loopback servers (the Runtime API, moto).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.containers.engine import DockerEngine
from tests.containers.runtime_api import Outcome, RuntimeApi

# Not the image's USER (65534): Lambda runs functions as a uid of its own choosing.
LAMBDA_USER = "993:990"
ACCOUNT = "123456789012"


def lambda_environment(name: str, *, region: str, memory_mb: int) -> dict[str, str]:
    """The variables Lambda sets for every function (credentials are the moto fakes)."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_Image",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }


@dataclass
class LambdaFunction:
    engine: DockerEngine
    image: str
    name: str
    environment: Mapping[str, str]
    region: str = "us-east-1"
    memory_mb: int = 1024
    timeout_s: float = 60.0
    command: str | None = None  # ImageConfig.Command: another handler than the image's CMD
    init_s: float | None = None  # container start -> the runtime's first /next
    invocations: list[Outcome] = field(default_factory=list)
    _api: RuntimeApi | None = None
    _container: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.name}"

    def start(self) -> LambdaFunction:
        self._api = RuntimeApi(self.arn, timeout_s=self.timeout_s).start()
        env = {
            **lambda_environment(self.name, region=self.region, memory_mb=self.memory_mb),
            **self.environment,
            "AWS_LAMBDA_RUNTIME_API": self._api.address,
        }
        args = [
            "--network", "host",
            "--user", LAMBDA_USER,
            "--read-only",
            "--tmpfs", "/tmp:rw,size=512m,mode=1777",
            "--memory", f"{self.memory_mb}m",
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
        ]  # fmt: skip
        for key, value in sorted(env.items()):
            args += ["--env", f"{key}={value}"]
        self._container = self.engine.create(
            [*args, self.image, *([self.command] if self.command else [])]
        )
        started = time.monotonic()
        self.engine.run("start", self._container)
        try:
            self.init_s = self._api.wait_ready(60) - started
        except Exception as e:
            raise AssertionError(f"{self.name} did not start: {e}\n{self.logs()}") from e
        return self

    def invoke(self, event: Any) -> Outcome:
        assert self._api is not None, "start() first"
        outcome = self._api.invoke(event, timeout_s=self.timeout_s)
        self.invocations.append(outcome)
        return outcome

    def response(self, event: Any) -> Any:
        """The handler's response; an AssertionError with the container's log otherwise."""
        outcome = self.invoke(event)
        if outcome.kind != "response":
            raise AssertionError(f"{self.name}: {outcome.kind} {outcome.payload}\n{self.logs()}")
        return outcome.payload

    def logs(self) -> str:
        if self._container is None:
            return ""
        done = self.engine.run("logs", self._container, check=False)
        return (done.stdout + done.stderr).decode(errors="replace")[-6000:]

    def stop(self) -> None:
        if self._container is not None:
            self.engine.remove(self._container)
            self._container = None
        if self._api is not None:
            self._api.stop()
            self._api = None

    def __enter__(self) -> LambdaFunction:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
