#!/bin/sh
# Run the SageMaker command given as the first argument (train, serve or processing).
set -e
command="$1"
shift
exec "$command" "$@"
