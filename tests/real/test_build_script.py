"""hack/real/build.py's decisions, without building: what it requires, stamps and refuses.

The build itself is exercised by every `make interop` (the binaries' --version is checked in
test_controlplane.py); these pin the recipe's pure parts, whose mistakes would only show as
a binary that reports the wrong version or a stamp that never goes stale.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hack.real import build

SCRIPT = Path(build.__file__)


def test_staging_modules_are_required_at_the_published_tag() -> None:
    assert build.staging_tag("v1.37.2") == "v0.37.2"


def test_version_stamping_as_upstreams_hack_scripts() -> None:
    flags = build.ldflags("2026-10-27T12:01:04Z")
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        assert f"-X '{pkg}.gitVersion=v1.37.2'" in flags
        assert f"-X '{pkg}.gitMinor=37'" in flags
        # Empty rather than the "$Format:%H$" placeholder the proxy's sources carry.
        assert f"-X '{pkg}.gitCommit='" in flags
    assert flags.startswith("-s -w ")


def test_a_stamp_changes_with_the_recipe_and_the_toolchain() -> None:
    kubelet = next(t for t in build.TARGETS if t.name == "kubelet")
    base = build.stamp_of(kubelet, "go version go1.26.8 linux/amd64", "-s -w")
    assert base != build.stamp_of(kubelet, "go version go1.26.9 linux/amd64", "-s -w")
    assert base != build.stamp_of(kubelet, "go version go1.26.8 linux/amd64", "-s")
    assert kubelet.cgo and not any(t.cgo for t in build.TARGETS if t is not kubelet)


@pytest.mark.parametrize(
    ("error", "unpublished"),
    [
        ("reading https://proxy.golang.org/x/@v/v0.37.2.info: 403 Forbidden", True),
        ("reading https://proxy.golang.org/x/@v/v0.37.2.info: 404 Not Found", True),
        (
            'Get "https://proxy.golang.org/...": dial tcp: lookup proxy.golang.org: no such host',
            False,
        ),
        ("module lookup disabled by GOPROXY=off", False),
    ],
)
def test_only_a_proxy_that_answered_makes_a_module_unpublished(
    error: str, unpublished: bool
) -> None:
    assert build.unpublished({"Error": error}) is unpublished


def test_unserved_staging_modules_become_empty_local_replacements(tmp_path: Path) -> None:
    build.write_module(
        tmp_path / "m",
        "kubeboot.local/real/test",
        {"k8s.io/api": "v0.37.2"},
        ["k8s.io/kubernetes/cmd/kubectl"],
        stubs=["k8s.io/sample-controller"],
    )
    gomod = (tmp_path / "m" / "go.mod").read_text()
    assert "\tk8s.io/api v0.37.2\n" in gomod
    assert "replace k8s.io/sample-controller => ./stubs/k8s.io/sample-controller" in gomod
    stub = tmp_path / "m" / "stubs" / "k8s.io" / "sample-controller" / "go.mod"
    assert stub.read_text().startswith("module k8s.io/sample-controller\n")
    assert '_ "k8s.io/kubernetes/cmd/kubectl"' in (tmp_path / "m" / "tools.go").read_text()


def test_without_go_it_fails_with_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "KUBEBOOT_REAL_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "kubectl"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "real-build: UNAVAILABLE: no `go` on PATH; install Go >= 1.26 to build the real components"
    ]


def test_unknown_targets_are_refused() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "kube-proxy"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "unknown targets ['kube-proxy']" in result.stderr
