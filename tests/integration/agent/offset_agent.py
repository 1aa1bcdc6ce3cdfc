"""``kubeboot`` with the agent's clock moved ahead and its rotation draw fixed at 0.

For the hibernation tests: run as ``python offset_agent.py agent …`` with
``KUBEBOOT_TEST_CLOCK_AHEAD=<seconds>``; the sleeper execs this same command line again at
the deadline (and the environment survives the exec), so every incarnation of the agent
sees the same moved clock, as the in-process rotation tests' ``_AheadClock`` does. Only
"now" and the draw are changed; certificates, CSRs, the signer and the exec are real.
"""

import datetime as dt
import os
import random

from kubeboot import clock
from kubeboot.cli.main import main

_AHEAD = dt.timedelta(seconds=float(os.environ["KUBEBOOT_TEST_CLOCK_AHEAD"]))
_real_now = clock.SystemClock.now


def _ahead_now(self: clock.SystemClock) -> dt.datetime:
    return _real_now(self) + _AHEAD


def _zero(self: random.Random) -> float:
    return 0.0


clock.SystemClock.now = _ahead_now  # type: ignore[method-assign]
random.SystemRandom.random = _zero  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    main()
