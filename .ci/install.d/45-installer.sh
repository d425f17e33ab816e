# The installer ISO for the virtual-media install tests (tests/install): the host's Debian
# kernel, a busybox initramfs that writes the lab image to the first disk, GRUB El Torito
# (grub-pc-bin) and the image's data, made with genisoimage. Built from the lab image of
# 30-image.sh (~25 s), cached under ~/.cache/orch/images by content key, so a second run
# reuses it at once. The tests serve it on 127.0.0.1 for the Redfish emulator.
for tool in grub-mkimage genisoimage qemu-img; do
  command -v "$tool" >/dev/null || { echo "45-installer: $tool missing" >&2; exit 1; }
done
python3 -m lab.installer
