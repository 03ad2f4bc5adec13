#!/usr/bin/env bash
# Installs and starts the services the tests and benchmarks need, as
# throwaway instances under /tmp that die with the machine:
#   - PostgreSQL (Debian's package), a fresh cluster run by a non-root user,
#     reachable on a Unix socket; prints `LUAPOOL_TEST_PG=postgres://...`.
#   - Redis (Debian's package), for the benchmarks only (not started here).
# Usage: eval "$(.ci/services.sh)"   (exports LUAPOOL_TEST_PG)
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server redis-tools)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need[@]}" >&2
fi

bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
user=postgres
id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
dir=$(mktemp -d /tmp/luapool-pg.XXXXXX)
chown "$user" "$dir"
run() { runuser -u "$user" -- "$@"; }
run "$bin/initdb" -D "$dir/data" -A trust -U luapool --no-sync >/dev/null
run "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-k $dir -c listen_addresses='' -c fsync=on -c max_connections=200" start >/dev/null
run "$bin/createdb" -h "$dir" -U luapool luapool_test
# The socket directory is the "host" of a libpq URL.
echo "export LUAPOOL_TEST_PG='postgres://luapool@${dir//\//%2F}/luapool_test'"
echo "export LUAPOOL_TEST_PG_DIR='$dir'"
