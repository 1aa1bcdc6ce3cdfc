"""``kubeboot`` with the agent's clock moved ahead and its rotation draw fixed.

For the hibernation tests: run as ``python offset_agent.py agent …`` with
``KUBEBOOT_TEST_CLOCK_AHEAD=<seconds>``; the sleeper execs this same command line again at
the deadline (and the environment survives the exec), so every incarnation of the agent
sees the same moved clock, as the in-process rotation tests' ``_AheadClock`` does. Only
"now" and the draw are changed; certificates, CSRs, the signer and the exec are real.

The draw is 0 in a fresh agent and 0.5 in one the sleeper woke (it finds the remembered
deadlines in its environment): an agent that drew again after the exec, instead of using
the deadline it slept until, would find that deadline 2 minutes away and sleep again.
"""

import datetime as dt
import os
import random

from kubeboot import clock
from kubeboot.cli.main import main

_AHEAD = dt.timedelta(seconds=float(os.environ["KUBEBOOT_TEST_CLOCK_AHEAD"]))
_DRAW = 0.5 if "KUBEBOOT_AGENT_DEADLINES" in os.environ else 0.0
_real_now = clock.SystemClock.now


def _ahead_now(self: clock.SystemClock) -> dt.datetime:
    return _real_now(self) + _AHEAD


def _draw(self: random.Random) -> float:
    return _DRAW


clock.SystemClock.now = _ahead_now  # type: ignore[method-assign]
random.SystemRandom.random = _draw  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    main()
