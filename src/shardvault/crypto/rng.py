"""Where randomness comes from.

The pure layers never draw randomness by themselves: every function that needs it takes a
:data:`RandomSource`. Production callers pass :data:`system_random`, the operating
system's CSPRNG through :mod:`secrets`; tests may pass a seeded source to replay a run.
"""

import secrets
from collections.abc import Callable

RandomSource = Callable[[int], bytes]
"""A callable that returns that many uniformly random bytes."""

system_random: RandomSource = secrets.token_bytes
"""The operating system's CSPRNG; the only source production code should pass."""
