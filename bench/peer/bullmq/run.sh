#!/usr/bin/env bash
# Peer benchmark of BullMQ (Node.js, Redis) against orgdispatch's platform
# simulator: bench/peer/bullmq/run.sh scale|isolation [flags] (--help lists
# them). Installs redis-server from Debian if it is missing, the pinned npm
# packages (package-lock.json) if node_modules is missing or stale, builds
# the orgdispatch binary for `orgdispatch sim`, then runs bench.mjs.
# Everything it starts listens on 127.0.0.1 and is stopped when it ends.
# Not part of CI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"

case "${1:-}" in
scale | isolation) ;;
-h | --help | "") exec node "$here/bench.mjs" --help ;;
*)
	echo "usage: $0 scale|isolation [flags]  (--help lists them)" >&2
	exit 2
	;;
esac

for tool in node npm go; do
	command -v "$tool" >/dev/null || {
		echo "run.sh: $tool is required" >&2
		exit 1
	}
done

if ! command -v redis-server >/dev/null; then
	echo "run.sh: installing redis-server from Debian" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "run.sh: redis-server is missing and this is not root: apt-get install -y redis-server" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	echo "run.sh: npm ci (bullmq, ioredis as pinned in package-lock.json)" >&2
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -z "${ORGDISPATCH_BIN:-}" ]; then
	bindir="${TMPDIR:-/tmp}/orgdispatch-bullmq-peer"
	mkdir -p "$bindir"
	echo "run.sh: go build ./cmd/orgdispatch (the simulator: orgdispatch sim)" >&2
	(cd "$repo" && go build -o "$bindir/orgdispatch" ./cmd/orgdispatch)
	export ORGDISPATCH_BIN="$bindir/orgdispatch"
fi

# Two connections per Worker (regular + blocking) in the workers and in
# redis-server: raise the descriptor limit where allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec node "$here/bench.mjs" "$@"
