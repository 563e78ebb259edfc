# syntax=docker/dockerfile:1
# The API Lambda: FastAPI behind API Gateway (Mangum), reads DynamoDB, presigns uploads.
# Build from the repository root (the context .dockerignore allows only what the image needs):
#   docker build --platform linux/arm64 --build-arg ARCH=arm64 -f docker/api.Dockerfile .
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
# The one pin list is pyproject.toml; the API never decodes or encodes pixels, so no libvips,
# no HEIC decoder, no Pillow and no NumPy (tens of MB).
RUN python requirements.py pyproject.toml --exclude pyvips,pyvips-binary,pi-heif,pillow,numpy > requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --target /deps -r requirements.txt

FROM ${BASE_IMAGE}
COPY --from=builder /deps ${LAMBDA_TASK_ROOT}
COPY api/ ${LAMBDA_TASK_ROOT}/api/
# Only what the function imports (tests/infra/test_layers.py checks it): the shared core (the
# record, keys, errors, ports, settings) and the AWS adapters; no engine, no local stack.
COPY processor/__init__.py ${LAMBDA_TASK_ROOT}/processor/
COPY processor/core/ ${LAMBDA_TASK_ROOT}/processor/core/
COPY processor/aws/ ${LAMBDA_TASK_ROOT}/processor/aws/
ENV PYTHONDONTWRITEBYTECODE=1
# COPY keeps the checkout's modes, and one made under umask 077 (0600 files, 0700 folders)
# would be unreadable to Lambda's unprivileged user: world-readable here (a RUN, since the
# legacy builder has no COPY --chmod). Lambda's file system is read-only: bytecode compiled
# now saves every cold start compiling it.
RUN chmod -R a+rX "${LAMBDA_TASK_ROOT}/api" "${LAMBDA_TASK_ROOT}/processor" \
    && python -m compileall -q "${LAMBDA_TASK_ROOT}/api" "${LAMBDA_TASK_ROOT}/processor"
# OCI labels; a deploy adds org.opencontainers.image.revision and .version (infra/deploy/plan.py).
LABEL org.opencontainers.image.title="imgpipe-api" \
      org.opencontainers.image.description="FastAPI metadata and upload API behind API Gateway (AWS Lambda)" \
      org.opencontainers.image.licenses="MIT"
# Lambda runs functions as its own unprivileged user; this keeps a local `docker run` non-root too.
USER 65534:65534
CMD ["api.handler.lambda_handler"]
