"""shardvault: self-hosted digital-asset custody with threshold (MPC) keys.

The packages follow the layers of DESIGN.md, in import order: ``crypto``, ``chains``,
``policy`` (pure, no I/O), then ``custody``, ``cosigner``, ``store``, ``audit`` and
``observability``, ``service``, and the edges ``api``, ``console``, ``sdk``, ``cli``.
A package imports only from the packages before it; ``make lint`` enforces this.
"""

__version__ = "0.1.0"
