#!/bin/sh
# As the Lambda base's entry point: the handler ("module.function") is the one argument.
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" >&2
  exit 142
fi
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  echo "AWS_LAMBDA_RUNTIME_API is not set: the stand-in base has no Runtime Interface Emulator" >&2
  exit 142
fi
export _HANDLER="$1"
exec python -m awslambdaric "$1"
