#!/bin/sh
# `make demo`: runs examples/demo.toml under pidone with a main program that exits after 4 s,
# which shuts everything down in reverse dependency order. Run as root to see pidone as a real
# PID 1 (in a fresh PID namespace); otherwise it runs as a child subreaper.
set -eu
cd "$(dirname "$0")/.."
bin=./target/release/pidone
main='echo "main program: services are up"; sleep 4; echo "main program: exiting with 0"'
echo "== pidone validate"
"$bin" validate --config examples/demo.toml
echo
echo "== pidone --config examples/demo.toml -- sh -c '...' (4 seconds)"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
  exec unshare --pid --fork --mount-proc "$bin" -v --config examples/demo.toml -- sh -c "$main"
fi
exec "$bin" -v --config examples/demo.toml -- sh -c "$main"
