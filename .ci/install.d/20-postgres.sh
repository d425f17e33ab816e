# A real PostgreSQL for the state-store tests (the same suite runs against SQLite).
PG_VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^${PG_VERSION} main"; then
  pg_createcluster "$PG_VERSION" main >/dev/null
fi
pg_ctlcluster "$PG_VERSION" main start 2>/dev/null || true
for _ in $(seq 1 50); do
  su postgres -c "pg_isready -q" && break
  sleep 0.2
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='orch'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE orch LOGIN PASSWORD 'orch-ci-only'\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='orch_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O orch orch_test"
export ORCH_TEST_POSTGRES_DSN="postgresql://orch:orch-ci-only@127.0.0.1:5432/orch_test"
