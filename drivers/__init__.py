"""orch's drivers, one package or module each, registered in the ``orch.drivers`` group.

Drivers depend on the engine's contract (:mod:`orchestrator.driver`) and never on each other.
"""
