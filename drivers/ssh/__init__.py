"""The SSH driver: logins, guarded commands and read-only preflight checks over SSH.

paramiko is imported only inside :mod:`drivers.ssh.session`, when a step runs.
"""

from drivers.ssh.driver import SshDriver
from drivers.ssh.settings import SshSettings

__all__ = ["SshDriver", "SshSettings"]
