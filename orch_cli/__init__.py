"""The ``orch`` command: a thin layer over the engine, the drivers and the lab."""
