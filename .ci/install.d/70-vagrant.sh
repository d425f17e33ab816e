# Vagrant + vagrant-libvirt (Debian packages in .ci/apt-packages.txt) for tests/lab/test_vagrant.py
# and bench/lab_up.py: check they work, then build the lab box from the cached lab image and
# add it as "orch-lab" (a tar of metadata.json + the qcow2: seconds, no download).
command -v vagrant >/dev/null || { echo "70-vagrant: vagrant missing" >&2; exit 1; }
vagrant plugin list | grep -q vagrant-libvirt || { echo "70-vagrant: vagrant-libvirt missing" >&2; exit 1; }
python3 -m lab.vagrantbox
