"""orch: layered deployment profiles turned into reviewed, journaled plans.

The engine lives here: the profile model, the planner, the plan value, the executor, the
state store and the errors. Drivers live in the top-level ``drivers`` package and are found
through the ``orch.drivers`` entry-point group; the engine never imports them.
"""

__version__ = "0.1.0"
