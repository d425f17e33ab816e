# A genuine kube-apiserver v1.20.2 (plus kube-controller-manager for its garbage collector
# and namespace controller), etcd 3.4 and kubectl 1.20.2 for tests/kubernetes (issue 9).
# lab/kubebuild.py builds them from Debian's own archive through a private apt
# configuration (bookworm source, bullseye's Go 1.15, nothing installed system-wide) and
# caches each binary by a content key under ~/.cache/orch/k8s: a second run takes seconds.
# Cold, measured on 2 cores shared with a load of ~12: kube-apiserver 549 s wall (158 s user +
# 38 s sys CPU, 0.8 GB peak), then kube-controller-manager 130 s more (36 + 11 s CPU); a
# first run (download, unpack, kube-apiserver) took 8 min 52 s; issue 9 measured 2 min 50 s
# for kube-apiserver on an idle machine. Warm (all cached): ~12 s. Bounded: 40 minutes.
# The tests start etcd + kube-apiserver themselves (tests/kubernetes/realserver.py) and
# find the binaries through ORCH_KUBE_BIN.
for tool in make dpkg-deb apt-get; do
  command -v "$tool" >/dev/null || { echo "50-kube-apiserver: $tool missing" >&2; exit 1; }
done
# One make builds every target the lab's offline mirror needs too (55-k8s-mirror.sh): the
# node binaries (kubeadm, kubelet, kubectl) and kube-scheduler/kube-proxy for its images.
# All seven cold: ~730 s at load 12 (one make; each binary cached by its own key after).
ORCH_KUBE_BIN="$(timeout 2400 python3 -m lab.kubebuild --timeout 2300 \
  --what cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kube-proxy \
  cmd/kubeadm cmd/kubelet cmd/kubectl | tail -n 1)"
"$ORCH_KUBE_BIN/kube-apiserver" --version  # fails loudly if broken
export ORCH_KUBE_BIN
echo "kube binaries in $ORCH_KUBE_BIN"
