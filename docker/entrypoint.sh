#!/usr/bin/env bash
# The container's start: migrate the database, load the seed if it changed, then serve.
# Arguments are passed on to `dyad serve`, e.g. `docker run dyad --workers 4`.
set -euo pipefail

dyad db upgrade
dyad seed --if-changed
exec dyad serve --host 0.0.0.0 --port 8000 "$@"
