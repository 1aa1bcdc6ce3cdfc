"""The deadlines that survive the exec into the sleeper, and the agent's use of them."""

from __future__ import annotations

import datetime as dt
import os
import random
import select
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from kubeboot.agent.daemon import Agent, AgentOptions
from kubeboot.agent.hibernation import decode_deadlines, encode_deadlines
from kubeboot.agent.sleeper import deadline_timer
from kubeboot.clock import FakeClock
from tests.unit.agent.agent_ca import NodeCA

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_malformed_entries_are_ignored() -> None:
    assert decode_deadlines("") == {}
    assert decode_deadlines("abc,=1,x=,y=notanumber,z=1e400") == {}
    assert decode_deadlines("ab=1767225600.5,junk") == {
        "ab": dt.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=dt.UTC)
    }


def test_round_trip() -> None:
    deadlines = {"aa": T0, "bb": T0 + dt.timedelta(hours=3, microseconds=250)}
    assert decode_deadlines(encode_deadlines(deadlines)) == deadlines


class _Draws(random.Random):
    def __init__(self, *draws: float) -> None:
        super().__init__()
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0)


def _agent(root: Path, deadlines: dict[str, dt.datetime], *draws: float) -> Agent:
    options = AgentOptions(root / "k.conf", None, root / "pki", "n1")
    return Agent(
        options, FakeClock(T0), say=lambda _: None, rng=_Draws(*draws), deadlines=deadlines
    )


def _leaf() -> x509.Certificate:
    ca = NodeCA()
    pem, _ = ca.issue(not_before=T0, not_after=T0 + dt.timedelta(days=10))
    return x509.load_pem_x509_certificate(pem)


def test_a_remembered_deadline_outside_the_certificates_life_is_drawn_again(
    tmp_path: Path,
) -> None:
    cert = _leaf()
    fp = cert.fingerprint(hashes.SHA256()).hex()
    kept = T0 + dt.timedelta(days=8)
    assert _agent(tmp_path, {fp: kept}, 0.5)._rotation_deadline(cert) == (fp, kept)
    # Outside NotBefore..NotAfter: not trusted, a new draw (0 -> 70 % of the life).
    late = T0 + dt.timedelta(days=11)
    assert _agent(tmp_path, {fp: late}, 0.0)._rotation_deadline(cert) == (
        fp,
        T0 + dt.timedelta(days=7),
    )
    # Another certificate's deadline is not ours; and one draw per certificate.
    agent = _agent(tmp_path, {"0" * 64: kept}, 0.5, 0.0)
    assert agent._rotation_deadline(cert) == (fp, T0 + dt.timedelta(days=8))
    assert agent._rotation_deadline(cert) == (fp, T0 + dt.timedelta(days=8))


def test_the_sleepers_timer_fires_at_the_wall_clock_deadline() -> None:
    """The timerfd the sleeper waits on when it serves metrics (Linux): one kernel timer on
    CLOCK_REALTIME, readable at the deadline and not before; a past deadline at once."""
    for ahead, earliest in ((0.3, 0.25), (-5.0, 0.0)):
        start = time.time()
        fd = deadline_timer(start + ahead)
        assert fd is not None
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            assert poller.poll(5000), "the timer never fired"
            assert time.time() - start >= earliest
        finally:
            os.close(fd)
