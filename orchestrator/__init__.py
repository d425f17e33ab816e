"""orch: layered deployment profiles turned into reviewed, journaled plans.

The engine lives here: the profile model, the planner, the plan value, the executor, the
state store and the errors. Drivers live in the top-level ``drivers`` package and are found
through the ``orch.drivers`` entry-point group; the engine never imports them.
"""

__version__ = "0.1.0"

#: the name orch is published and installed under (``orch`` was taken on PyPI); the command
#: stays ``orch``. An install made before the rename is still found under "orch".
DISTRIBUTION = "orch-stack"


def distribution_extras() -> tuple[str, frozenset[str]]:
    """(the installed distribution's name, its extras), for install hints."""
    from importlib import metadata
    for name in (DISTRIBUTION, "orch"):
        try:
            meta = metadata.distribution(name).metadata
        except metadata.PackageNotFoundError:
            continue
        return name, frozenset(meta.get_all("Provides-Extra") or ())
    return DISTRIBUTION, frozenset()
