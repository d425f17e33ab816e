"""The Kubernetes driver: server-side apply of manifests and of KubeVirt, CDI, Multus and
Kata objects built from step inputs, condition waits, and drift reads, through the official
``kubernetes`` client (imported lazily)."""

from drivers.kubernetes.driver import KubernetesDriver

__all__ = ["KubernetesDriver"]
