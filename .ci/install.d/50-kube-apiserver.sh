# A genuine kube-apiserver v1.20.2 (plus kube-controller-manager for its garbage collector
# and namespace controller), etcd 3.4 and kubectl 1.20.2 for tests/kubernetes (issue 9).
# lab/kubebuild.py builds them from Debian's own archive through a private apt
# configuration (bookworm source, bullseye's Go 1.15, nothing installed system-wide) and
# caches each binary by a content key under ~/.cache/orch/k8s: a second run takes seconds.
# Cold: kube-apiserver alone took 8 min 52 s here on 2 busy cores (load ~13; 173 s user CPU,
# 0.8 GB peak); issue 9 measured 2 min 50 s idle. Warm: ~12 s. Bounded: 40 minutes.
# The tests start etcd + kube-apiserver themselves (tests/kubernetes/realserver.py) and
# find the binaries through ORCH_KUBE_BIN.
for tool in make dpkg-deb apt-get; do
  command -v "$tool" >/dev/null || { echo "50-kube-apiserver: $tool missing" >&2; exit 1; }
done
ORCH_KUBE_BIN="$(timeout 2400 python3 -m lab.kubebuild \
  --what cmd/kube-apiserver cmd/kube-controller-manager | tail -n 1)"
"$ORCH_KUBE_BIN/kube-apiserver" --version  # fails loudly if broken
export ORCH_KUBE_BIN
echo "kube binaries in $ORCH_KUBE_BIN"
