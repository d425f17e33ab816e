# Emulated BMCs for tests/bmc (started per test session by lab/bmc.py, not here).
# The emulators come from the `lab` extra; check they are on PATH, and give libvirt the
# directory the `default` storage pool uses (lab/bmc.py creates the pool when missing).
for tool in sushy-emulator vbmcd ipmitool genisoimage qemu-img; do
  command -v "$tool" >/dev/null || { echo "40-bmc: $tool missing" >&2; exit 1; }
done
mkdir -p /var/lib/libvirt/images
