# The offline mirror the lab's Kubernetes cluster installs from (tests/lab/test_k8s_cluster.py,
# issue 11): kubeadm, kubelet, kubectl, the control plane's images, Debian's node packages and
# the images built here (pause, a hello workload), laid out by lab/mirror.py under
# ~/.cache/orch/mirror/<content key>. The Kubernetes binaries come from the same cached
# lab.kubebuild tree as 50-kube-apiserver.sh, which builds all seven targets in its ONE make
# (so this fragment builds nothing of Kubernetes on a machine where 50 ran). Needs the lab
# image's debootstrap tree (30-image.sh: the node packages are resolved against its dpkg
# status), gcc + libc6-dev (static pause and hello) and dpkg-scanpackages (dpkg-dev).
# Idempotent and cached by content key: a second run reuses the tree (~3 s). Cold, after 50:
# ~15 s (20 packages, 7 images). Bounded: 40 minutes (a cold kube build alone is ~730 s at
# load 12).
for tool in gcc dpkg-scanpackages; do
  command -v "$tool" >/dev/null || { echo "55-k8s-mirror: $tool missing" >&2; exit 1; }
done
ORCH_K8S_MIRROR="$(timeout 2400 python3 -m lab.mirror | tail -n 1)"
test -s "$ORCH_K8S_MIRROR/MIRROR.json"  # fails loudly if broken
export ORCH_K8S_MIRROR
echo "offline Kubernetes mirror in $ORCH_K8S_MIRROR"
