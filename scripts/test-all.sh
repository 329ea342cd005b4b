#!/usr/bin/env bash
# The whole test run on any Debian-like machine: makes sure Redis, PostgreSQL and Chromium are
# there (installing Debian's packages when running as root with apt-get, otherwise stopping at once
# with one line naming what to install), then runs build, typecheck, biome, the package checks and
# every vitest suite. `npm run test:all` runs this; so does .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

can_install=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then can_install=1; fi

need() {
  if [ "$can_install" = 0 ]; then
    echo "coatcheck tests need $1: install it (Debian/Ubuntu: sudo apt-get install $2) and run again" >&2
    exit 1
  fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# Redis: a server on 127.0.0.1:6379 for the Redis suites; the redis-server and redis-cli binaries for
# the suites that start their own (faults, Cluster).
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  need "Redis (redis-server and redis-cli)" "redis-server redis-tools"
  apt_install redis-server redis-tools
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/coatcheck-test-redis.log
  wait_for redis-cli -h 127.0.0.1 -p 6379 ping || {
    echo "Redis did not start on 127.0.0.1:6379 (see /tmp/coatcheck-test-redis.log)" >&2
    exit 1
  }
fi

# PostgreSQL on 127.0.0.1:5432, user postgres, trust authentication.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    need "PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth)" "postgresql"
    apt_install postgresql
  fi
  if [ "$can_install" = 0 ]; then
    echo "coatcheck tests need PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth): start it and run again" >&2
    exit 1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "coatcheck tests" "$hba"; then
    # Tests connect as postgres over TCP without a password; this cluster is for tests only.
    sed -i '1i # coatcheck tests: trust local TCP connections\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main reload
  wait_for pg_isready -q -h 127.0.0.1 -p 5432 || {
    echo "PostgreSQL did not start on 127.0.0.1:5432 (pg_ctlcluster $version main status)" >&2
    exit 1
  }
fi

# Browser tests drive Debian's Chromium; never a downloaded browser.
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  need "Chromium at $chromium (or set CHROMIUM_PATH)" "chromium"
  apt_install chromium
fi

if [ ! -d node_modules ]; then npm install --no-audit --no-fund; fi

npm test
