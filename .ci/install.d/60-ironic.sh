# A standalone Ironic for the OpenStack driver tests, in its own virtualenv: Ironic pins
# dozens of OpenStack libraries (oslo.*, SQLAlchemy, eventlet) that must not move ours.
# The tests start it themselves (tests/openstack/ironic_service.py: noauth, SQLite,
# fake-hardware, a free port on 127.0.0.1) and find it through ORCH_IRONIC_BIN.
# Idempotent: an existing venv with the pinned version is kept. Bounded: 15 minutes.
ORCH_IRONIC_VENV=/opt/orch-ironic
ORCH_IRONIC_VERSION=39.0.0
if ! "$ORCH_IRONIC_VENV/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('ironic') != '$ORCH_IRONIC_VERSION')" \
    2>/dev/null; then
  python3 -m venv "$ORCH_IRONIC_VENV"
  timeout 900 "$ORCH_IRONIC_VENV/bin/pip" install -q "ironic==$ORCH_IRONIC_VERSION"
fi
"$ORCH_IRONIC_VENV/bin/python" -c "import ironic.command.singleprocess"  # fails loudly if broken
export ORCH_IRONIC_BIN="$ORCH_IRONIC_VENV/bin"
echo "ironic $ORCH_IRONIC_VERSION in $ORCH_IRONIC_BIN"
