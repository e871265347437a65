#!/usr/bin/env bash
# Make sure the local PostgreSQL and Redis answer; start them if they don't; fail if they stay down.
set -uo pipefail
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "==> PostgreSQL is down; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | head -n1)" main start 2>&1 || true
  for _ in $(seq 1 20); do pg_up && break; sleep 0.5; done
fi
if ! redis_up; then
  echo "==> Redis is down; starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
fi
pg_up || { echo "FAIL: PostgreSQL is unreachable at 127.0.0.1:5432"; exit 1; }
redis_up || { echo "FAIL: Redis is unreachable at 127.0.0.1:6379"; exit 1; }
echo "==> PostgreSQL and Redis are up"
