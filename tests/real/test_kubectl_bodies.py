"""Real kubectl's protobuf bodies, of every size that matters, stored whole on both planes.

``kubectl create configmap --from-file`` (the bootstrap-token guide's cluster-info step)
sends a protobuf ConfigMap; a file that is not UTF-8 goes to ``binaryData``. A truncated or
malformed body ("protobuf body is truncated or malformed (length)") was reported once for
that command against kubeboot: these sizes put the length prefixes of the data entry, the
ConfigMap and the envelope on both sides of each varint boundary (127/128 and 16383/16384
bytes), and end at the 1 MiB value limit, which counts decoded bytes (a 1,000,000-byte
binary file is allowed upstream). Each plane must answer the same and keep every byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import pytest

from tests.real.controlplane import ControlPlane

# Around each varint boundary of a length prefix, a whole kubeconfig-sized file, the limit.
_SIZES = (0, 1, 110, 126, 127, 128, 129, 972, 16_300, 16_383, 16_384, 70_000, 1_000_000)
_MIB = 1024 * 1024


def _content(size: int, binary: bool) -> bytes:
    rnd = random.Random(size * 2 + binary)
    if binary:  # not UTF-8 (a lone 0xff), so kubectl puts it in binaryData
        return b"\xff" + rnd.randbytes(max(size - 1, 0)) if size else b""
    return bytes(rnd.choice(b"abcdefghij0123456789:/+= \n") for _ in range(size))


@pytest.mark.timeout(900)
def test_kubectl_create_configmap_from_files_of_every_size(
    plane: ControlPlane, real_tmp: Path
) -> None:
    ns = "kubectl-bodies"
    plane.kubectl("create", "namespace", ns)
    try:
        for binary in (False, True):
            for size in _SIZES:
                name = f"{'bin' if binary else 'txt'}-{size}"
                path = real_tmp / f"{plane.flavor}-{name}"
                content = _content(size, binary)
                path.write_bytes(content)
                plane.kubectl("-n", ns, "create", "configmap", name, f"--from-file=k={path}")
                stored = json.loads(
                    plane.kubectl("-n", ns, "get", "configmap", name, "-o", "json").stdout
                )
                if binary and size:
                    got = base64.b64decode(stored["binaryData"]["k"])
                else:
                    got = stored.get("data", {}).get("k", "").encode()
                assert hashlib.sha256(got).hexdigest() == hashlib.sha256(content).hexdigest(), (
                    f"[{plane.flavor}] {name}: {len(got)} bytes stored of {size}"
                )
        # One byte over the limit is refused by both, in the same words.
        path = real_tmp / f"{plane.flavor}-over"
        path.write_bytes(_content(_MIB + 1, True))
        over = plane.kubectl(
            "-n", ns, "create", "configmap", "over", f"--from-file=k={path}", check=False
        )
        assert over.returncode != 0
        assert 'ConfigMap "over" is invalid: []: Too long: may not be more than 1048576 bytes' in (
            over.stderr
        ), over.stderr
    finally:
        plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)
