# An OpenStack control plane for the OpenStack driver tests (tests/openstack/plane.py):
# Keystone, Placement, Glance, Neutron and Nova of release 2026.1 in their own virtualenv,
# pinned by that release's upper-constraints (.ci/openstack-2026.1-constraints.txt, a copy of
# openstack/requirements stable/2026.1), with Debian's MariaDB and RabbitMQ
# (.ci/apt-packages.txt), which the tests run as private instances.
# Idempotent: a venv holding the pinned versions is kept. Bounded: 15 minutes (~90 s cold).
ORCH_OPENSTACK_VENV=/opt/orch-openstack
ORCH_OPENSTACK_PINS="nova==33.0.2 glance==32.0.0 neutron==28.0.2 openstack-placement==15.0.0 keystone==29.1.0"
ORCH_OPENSTACK_EXTRA="gunicorn PyMySQL python-memcached"
_orch_os_check='import importlib.metadata as m, sys
want = dict(p.split("==") for p in sys.argv[1:])
sys.exit(any(m.version(k) != v for k, v in want.items()))'
if ! "$ORCH_OPENSTACK_VENV/bin/python" -c "$_orch_os_check" $ORCH_OPENSTACK_PINS 2>/dev/null; then
  rm -rf "$ORCH_OPENSTACK_VENV"
  python3 -m venv "$ORCH_OPENSTACK_VENV"
  # the machine-wide pip constraint file is not ours to obey here: only the release's pins
  PIP_CONSTRAINT= timeout 900 "$ORCH_OPENSTACK_VENV/bin/pip" install -q \
    -c "$(dirname "${BASH_SOURCE[0]}")/../openstack-2026.1-constraints.txt" \
    $ORCH_OPENSTACK_PINS $ORCH_OPENSTACK_EXTRA
fi
# Nova's libvirt driver (tests/openstack/plane_libvirt.py): the release's libvirt-python, built
# against Debian's libvirt-dev (~10 s); added to an existing venv without rebuilding it
if ! "$ORCH_OPENSTACK_VENV/bin/python" -c "import libvirt" 2>/dev/null; then
  PIP_CONSTRAINT= timeout 600 "$ORCH_OPENSTACK_VENV/bin/pip" install -q \
    -c "$(dirname "${BASH_SOURCE[0]}")/../openstack-2026.1-constraints.txt" libvirt-python
fi
# fails loudly if broken (the WSGI modules themselves read config at import: only found here)
"$ORCH_OPENSTACK_VENV/bin/python" -c "import importlib.util as u, sys
mods = ('nova.wsgi.osapi_compute', 'glance.wsgi.api', 'neutron.wsgi.api', 'placement.wsgi.api',
        'keystone.wsgi.api', 'nova.virt.fake', 'pymysql', 'libvirt', 'nova.virt.libvirt')
missing = [m for m in mods if u.find_spec(m) is None]
sys.exit(f'65-openstack-plane: missing {missing}' if missing else 0)"
export ORCH_OPENSTACK_BIN="$ORCH_OPENSTACK_VENV/bin"
echo "openstack 2026.1 plane in $ORCH_OPENSTACK_BIN"
