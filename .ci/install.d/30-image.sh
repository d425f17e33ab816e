# Lab guests for the libvirt tests: the Debian lab image (debootstrap from the mirror apt
# uses, ~2-3 min the first time), the busybox initramfs guest and the lab SSH key. All are
# cached under ~/.cache/orch by content key, so a second run reuses them in seconds.
# The accelerator verdict is probed here too (bounded: the probe guest is killed after 45 s).
python3 -m lab.image
python3 -c "import sys; from drivers.libvirt.accel import main; sys.exit(main())"
# The L1 image (lab image + QEMU/libvirt + the L2 guest) for deployment 76 end to end.
python3 -m lab.l1image
