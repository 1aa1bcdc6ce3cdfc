"""The audit comparison of the kubelet tests (pure): which answers count as refusals."""

from __future__ import annotations

import json
from pathlib import Path

from tests.real.kubelet_node import kubelet_requests, lost_creates

_LOST = (
    'E1202 15:18:46.762765 2509 kubelet_node_status.go:108] "Unable to register node with API '
    'server" err="Post \\"https://127.0.0.1:34411/api/v1/nodes\\": read tcp 127.0.0.1:45116->'
    '127.0.0.1:34411: use of closed network connection" node="n"\n'
    'E1202 15:18:46.764922 2509 event.go:374] "Unable to write event" err="Post \\"https://'
    '127.0.0.1:34411/api/v1/namespaces/default/events\\": read tcp 127.0.0.1:45082->'
    '127.0.0.1:34411: use of closed network connection" event="x"\n'
)


def _event(verb: str, resource: str, code: int, user: str = "system:node:n") -> str:
    return json.dumps(
        {
            "stage": "ResponseComplete",
            "verb": verb,
            "userAgent": "kubelet/v1.37.2",
            "user": {"username": user},
            "objectRef": {"resource": resource},
            "responseStatus": {"code": code},
        }
    )


def test_a_retry_of_an_abandoned_create_is_not_a_refusal(tmp_path: Path) -> None:
    log = tmp_path / "kubelet.log"
    log.write_text(_LOST)
    lost = lost_creates(log)
    assert lost == {("create", "nodes"): 1, ("create", "events"): 1}
    audit = tmp_path / "audit.log"
    lines = [_event("create", "nodes", 409), _event("create", "events", 201)]
    lines += [_event("create", "events", 409), _event("create", "events", 409)]
    audit.write_text("\n".join(lines) + "\n")
    counted = kubelet_requests(audit, lost=lost)
    assert counted.codes[("create", "nodes")] == set()
    # one 409 per abandoned create is its retry's; a second one is still a refusal
    assert counted.codes[("create", "events")] == {201, 409}
    assert kubelet_requests(audit).refused() == {
        ("create", "nodes"): {409},
        ("create", "events"): {409},
    }


def test_requests_sent_before_the_first_certificate_are_left_out(tmp_path: Path) -> None:
    audit = tmp_path / "audit.log"
    lines = [_event("list", "services", 403, "system:anonymous"), _event("list", "services", 200)]
    audit.write_text("\n".join(lines) + "\n")
    assert dict(kubelet_requests(audit).codes) == {("list", "services"): {200}}
