#!/usr/bin/env bash
# `npm run test:all`: the whole test run on a fresh machine, set-up included. Installs what the
# tests need and is missing (nginx, Chromium, Redis, PostgreSQL: apt-get, as root or through
# sudo), starts Redis and PostgreSQL when they are down, creates the `test` database, installs
# node_modules when absent, then runs `npm run lint` and `npm test`. On a machine already set
# up it only checks, so it is safe to run every time; `npm test` alone skips all of that.
# TEST_DATABASE_URL / TEST_REDIS_URL (see test/helper.ts) point the tests at other servers;
# then the local one is neither installed nor started.
set -uo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*"; }
fail() { printf '\ntest:all: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

local_pg=true; [ -n "${TEST_DATABASE_URL:-}" ] && local_pg=false
local_redis=true; [ -n "${TEST_REDIS_URL:-}" ] && local_redis=false

log "system packages (nginx: load-balancer tests; chromium: browser tests; redis, postgresql)"
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/bin/chromium ] || need+=(chromium)
if $local_redis; then command -v redis-server >/dev/null 2>&1 || need+=(redis-server); fi
if $local_pg; then compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql); fi
installed_pg=false
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if ! command -v apt-get >/dev/null 2>&1; then fail "missing ${need[*]} and no apt-get here: install them, then run this again"; fi
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" \
    || fail "apt-get install ${need[*]} failed (needs root or sudo)"
  [[ " ${need[*]} " == *" postgresql "* ]] && installed_pg=true
else
  echo "all present"
fi

log "services"
if $local_redis && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting redis on 127.0.0.1:6379"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if $local_pg && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  [ -n "$version" ] || fail "PostgreSQL is installed but has no cluster under /etc/postgresql (pg_createcluster <version> main)"
  echo "starting PostgreSQL $version/main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
for _ in $(seq 1 60); do
  { ! $local_redis || redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; } &&
    { ! $local_pg || pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; } && break
  sleep 1
done
if $local_redis; then redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || fail "Redis is not answering on 127.0.0.1:6379"; fi
if $local_pg; then
  pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL is not answering on 127.0.0.1:5432"
  # The tests connect as postgres over TCP without a password. A cluster this script has just
  # installed only allows that with a password: let the local postgres user in (loopback only).
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 && $installed_pg; then
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    echo "allowing postgres@127.0.0.1 without a password in $hba (a cluster installed by this run)"
    as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba" && as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 \
    || fail "cannot connect as postgres@127.0.0.1 without a password: allow it in pg_hba.conf (trust, loopback) or set TEST_DATABASE_URL"
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' || fail "could not create database test"
  echo "PostgreSQL ready (database test)"
fi
echo "services ready"

log "node modules"
if [ ! -d node_modules ]; then npm ci --no-audit --no-fund || fail "npm ci failed"; fi
node -e "require('better-sqlite3')(':memory:').prepare('select 1').get()" || fail "better-sqlite3 does not load: run npm ci (it builds it when no prebuilt binary fits)"
echo "ok"

log "npm run lint"
npm run lint || fail "lint failed"

log "npm test"
npm test
