# syntax=docker/dockerfile:1
# The processor Lambda: SQS batch -> libvips renditions -> S3 public/ + DynamoDB.
# Build from the repository root (the context .dockerignore allows only what the image needs):
#   docker build --platform linux/arm64 --build-arg ARCH=arm64 -f docker/processor.Dockerfile .
# `python -m infra.deploy build` runs exactly this for both images.

# Pinned tag: a new base (security fixes) is a reviewed one-line change, not a surprise.
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12.2026.10.03.13

FROM ${BASE_IMAGE} AS builder
# Lambda's architecture, as the template's Architecture parameter spells it: arm64 or x86_64.
# The platform itself comes from `docker build --platform`; this guard turns the classic mistake
# (an x86 laptop building for an arm64 function without --platform) into a build error instead
# of a function that cannot start.
ARG ARCH=arm64
RUN machine="$(uname -m)"; \
    case "${ARCH}:${machine}" in \
      arm64:aarch64|x86_64:x86_64) ;; \
      *) echo "ARCH=${ARCH} but this stage runs on ${machine}: add --platform linux/${ARCH}" >&2; exit 1 ;; \
    esac
WORKDIR /build
COPY pyproject.toml docker/requirements.py ./
# The one pin list is pyproject.toml; the processor never serves HTTP, so no FastAPI/Mangum.
# libvips itself comes from the pyvips-binary wheel: no compiler, no system packages.
# NumPy's own test suite (17 MB) is never imported: left out of the image.
RUN python requirements.py pyproject.toml --exclude fastapi,fastapi-offline,mangum > requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --target /deps -r requirements.txt \
    && find /deps/numpy -depth -type d -name tests -exec rm -rf {} +

FROM ${BASE_IMAGE}
COPY --from=builder /deps ${LAMBDA_TASK_ROOT}
# Only what the function imports (tests/infra/test_layers.py checks it): the processor package,
# every layer of it; the CLI and the local stack live outside it (cli/) and stay out.
COPY processor/ ${LAMBDA_TASK_ROOT}/processor/
# glibc's per-thread malloc arenas make a long-lived image worker's RSS grow; two is enough.
ENV MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1
# COPY keeps the checkout's modes, and one made under umask 077 (0600 files, 0700 folders)
# would be unreadable to Lambda's unprivileged user: world-readable here (a RUN, since the
# legacy builder has no COPY --chmod). Lambda's file system is read-only: bytecode compiled
# now saves every cold start compiling it.
RUN chmod -R a+rX "${LAMBDA_TASK_ROOT}/processor" \
    && python -m compileall -q "${LAMBDA_TASK_ROOT}/processor"
# OCI labels; a deploy adds org.opencontainers.image.revision and .version (infra/deploy/plan.py).
LABEL org.opencontainers.image.title="imgpipe-processor" \
      org.opencontainers.image.description="SQS batches of S3 uploads to libvips renditions and DynamoDB records (AWS Lambda)" \
      org.opencontainers.image.licenses="MIT"
# Lambda runs functions as its own unprivileged user; this keeps a local `docker run` non-root too.
USER 65534:65534
CMD ["processor.entrypoints.handler.lambda_handler"]
