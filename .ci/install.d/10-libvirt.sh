# Start libvirt by hand (no systemd on these machines; Debian 12 has no modular daemons).
# /dev/kvm at 0600 makes libvirt re-probe QEMU on every call (`virsh define` took 60 s):
# group kvm, mode 0660 fixes that.
if [ -e /dev/kvm ]; then
  chgrp kvm /dev/kvm 2>/dev/null || true
  chmod 0660 /dev/kvm
fi
mkdir -p /var/run/libvirt /var/lib/libvirt/images
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 50); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.2
done
virsh -c qemu:///system version
