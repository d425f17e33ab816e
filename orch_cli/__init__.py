"""The ``orch`` command: a thin layer over the engine (``orchestrator``), the drivers and the lab."""
