#!/usr/bin/env python3
"""Build upstream Kubernetes v1.37.2 and etcd v3.7.3 from the Go module proxy, once.

The real-component test tier (``tests/real/``) runs these binaries side by side with kubeboot.
They are built from source rather than downloaded because the Go module proxy is what this
project can reach; the recipe follows upstream's ``hack/lib/golang.sh`` (``-trimpath``,
``-s -w``, version stamping, tags ``selinux,notest,grpcnotrace``, CGO only for the kubelet) so
that the binaries behave like release builds.

Why a scratch main module: ``k8s.io/kubernetes`` requires its 33 staging modules at v0.0.0 and
replaces them with ``./staging/...`` directories that are not in the module zip; a dependency's
replace directives are ignored anyway. So the scratch module requires each staging module at its
published tag (v1.37.2 → v0.37.2), the list read from kubernetes' own go.mod, and everything else
resolves to the versions kubernetes pins. etcd lives in a second scratch module: its dependency
versions differ from kubernetes' and must not be unified with them.

Everything lands in ``${KUBEBOOT_REAL_CACHE:-~/.cache/kubeboot-real}/v1.37.2/bin/``. Each binary
has a stamp recording the recipe that built it; a run whose stamps all match does nothing and
needs no network. A lock file serialises concurrent runs (the second waits, then finds the
binaries built). Stdlib only: it runs before any virtualenv exists.

Exit codes: 0 built or reused; 2 Go or the module proxy unavailable (one line on stderr saying
which); 1 a build failed (the go command's output is in the log it names).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.3"
# Bump when the recipe changes in a way that must rebuild every binary.
RECIPE = "1"
TAGS = "selinux,notest,grpcnotrace"


@dataclass(frozen=True)
class Target:
    """One binary: the package that builds it, and how."""

    name: str
    package: str
    module: str  # "kubernetes" or "etcd": which scratch module builds it
    cgo: bool = False
    test: bool = False  # built with `go test -c`
    optional: bool = False  # a failure is reported but does not fail the run


# Ordered so that what the other tiers need first is ready first: the control plane, then
# kubectl, the node side, and the e2e suite last (it is the biggest).
TARGETS: tuple[Target, ...] = (
    Target("etcd", "go.etcd.io/etcd/server/v3", "etcd"),
    Target("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", "kubernetes"),
    Target(
        "kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager", "kubernetes"
    ),
    Target("kubectl", "k8s.io/kubernetes/cmd/kubectl", "kubernetes"),
    Target("kubeadm", "k8s.io/kubernetes/cmd/kubeadm", "kubernetes"),
    Target("kubelet", "k8s.io/kubernetes/cmd/kubelet", "kubernetes", cgo=True),
    Target("e2e.test", "k8s.io/kubernetes/test/e2e", "kubernetes", test=True),
    Target("etcdctl", "go.etcd.io/etcd/etcdctl/v3", "etcd", optional=True),
)


class Unavailable(Exception):
    """Go or the module proxy cannot be used: the tier cannot run here."""


class BuildFailed(Exception):
    """A go command failed; the message names the log holding its output."""


def cache_root() -> Path:
    env = os.environ.get("KUBEBOOT_REAL_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "kubeboot-real"
    return base / K8S_VERSION


def log(msg: str) -> None:
    print(f"real-build: {msg}", flush=True)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # The build must not pick up a caller's flags (e.g. -mod=vendor) other than -buildvcs.
    env["GOFLAGS"] = "-buildvcs=false"
    env.setdefault("GOTOOLCHAIN", "local")
    return env


def run_go(args: list[str], cwd: Path, logfile: Path, env: dict[str, str] | None = None) -> str:
    """Run one go command, appending its output to ``logfile``; return its stdout."""
    started = time.monotonic()
    with logfile.open("a") as out:
        out.write(f"\n$ (cd {cwd} && go {' '.join(args)})\n")
        out.flush()
        proc = subprocess.run(
            ["go", *args],
            cwd=cwd,
            env=env or go_env(),
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            check=False,
        )
        out.write(f"# exit {proc.returncode} after {time.monotonic() - started:.0f}s\n")
    if proc.returncode != 0:
        raise BuildFailed(f"`go {' '.join(args[:2])} ...` failed; see {logfile}")
    return proc.stdout


def go_version() -> str:
    if shutil.which("go") is None:
        raise Unavailable("no `go` on PATH; install Go >= 1.26 to build the real components")
    proc = subprocess.run(["go", "version"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Unavailable(f"`go version` failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def download(module: str, logfile: Path) -> dict[str, str]:
    """`go mod download -json` one module; an unreachable proxy is Unavailable, not a failure."""
    info = download_many([module], logfile)[0]
    if "Error" in info:
        proxy = go_env().get("GOPROXY") or "default"
        raise Unavailable(
            f"cannot download {module} from the Go module proxy (GOPROXY={proxy}): {info['Error']}"
        )
    return info


def download_many(modules: list[str], logfile: Path) -> list[dict[str, str]]:
    """One `go mod download -json` for several modules: one JSON object each, "Error" on failure."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", *modules],
        cwd=Path("/"),
        env=go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    with logfile.open("a") as out:
        out.write(f"\n$ go mod download -json {' '.join(modules)}\n{proc.stdout}{proc.stderr}")
    decoder = json.JSONDecoder()
    infos: list[dict[str, str]] = []
    text = proc.stdout.strip()
    while text:
        obj, end = decoder.raw_decode(text)
        infos.append(obj)
        text = text[end:].strip()
    if len(infos) != len(modules):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        proxy = go_env().get("GOPROXY") or "default"
        raise Unavailable(f"the Go module proxy (GOPROXY={proxy}) did not answer: {last}")
    return infos


def unpublished(info: dict[str, str]) -> bool:
    """The proxy answered, but does not serve this version (403/404/410), as opposed to a
    network failure."""
    error = info.get("Error", "")
    return any(code in error for code in ("403 Forbidden", "404 Not Found", "410 Gone"))


def staging_modules(kubernetes_gomod: Path, logfile: Path) -> list[str]:
    """The staging modules kubernetes replaces with ./staging/..., read from its go.mod."""
    parsed = json.loads(run_go(["mod", "edit", "-json", str(kubernetes_gomod)], Path("/"), logfile))
    mods = sorted(
        r["Old"]["Path"] for r in parsed.get("Replace") or [] if r["New"]["Path"].startswith("./")
    )
    if not mods:
        raise BuildFailed(f"no ./staging replaces found in {kubernetes_gomod}")
    return mods


def staging_tag(version: str) -> str:
    """kubernetes v1.X.Y publishes its staging modules as v0.X.Y."""
    return "v0." + version.removeprefix("v1.")


def write_module(
    directory: Path,
    name: str,
    requires: dict[str, str],
    imports: list[str],
    stubs: Sequence[str] = (),
) -> None:
    """A scratch main module whose tools.go imports what we build (so `go mod tidy` keeps it).

    ``stubs`` are staging modules the proxy does not serve at the tag (k8s.io/sample-cli-plugin
    on some mirrors): nothing we build imports them, but kubernetes' go.mod still names them,
    so each is replaced by an empty local module rather than left at the unresolvable v0.0.0.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    lines = [f"module {name}", "", "go 1.26", "", "require ("]
    lines += [f"\t{path} {version}" for path, version in sorted(requires.items())]
    lines += [")", ""]
    for module in stubs:
        stub = directory / "stubs" / module
        stub.mkdir(parents=True)
        (stub / "go.mod").write_text(f"module {module}\n\ngo 1.26\n")
        lines.append(f"replace {module} => ./stubs/{module}")
    (directory / "go.mod").write_text("\n".join(lines) + "\n")
    tools = ["//go:build tools", "", "package tools", "", "import ("]
    tools += [f'\t_ "{pkg}"' for pkg in imports]
    tools += [")", ""]
    (directory / "tools.go").write_text("\n".join(tools))


def ldflags(build_date: str) -> str:
    major, minor = K8S_VERSION.removeprefix("v").split(".")[:2]
    values = {
        "gitVersion": K8S_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        # The module zip carries no commit; empty beats the "$Format:%H$" placeholder.
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        flags += [f"-X '{pkg}.{key}={value}'" for key, value in values.items()]
    return " ".join(flags)


def stamp_of(target: Target, go: str, flags: str) -> str:
    version = ETCD_VERSION if target.module == "etcd" else K8S_VERSION
    recipe = [RECIPE, go, target.package, version, str(target.cgo), str(target.test), TAGS, flags]
    return hashlib.sha256("\n".join(recipe).encode()).hexdigest()


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another build holds {root / '.lock'}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class Builder:
    def __init__(self, root: Path, parallel: int) -> None:
        self.root = root
        self.bin = root / "bin"
        self.logfile = root / "build.log"
        self.parallel = parallel
        self.go = ""
        self.prepared: set[str] = set()
        self.build_date = ""

    def stamp_path(self, target: Target) -> Path:
        return self.bin / f".{target.name}.stamp"

    def flags_for(self, target: Target) -> str:
        return ldflags(self.build_date) if target.module == "kubernetes" else "-s -w"

    def current(self, target: Target) -> bool:
        stamp = self.stamp_path(target)
        return (
            (self.bin / target.name).is_file()
            and stamp.is_file()
            and stamp.read_text().strip() == stamp_of(target, self.go, self.flags_for(target))
        )

    def prepare(self, module: str) -> Path:
        """Create (once per run) the scratch module that builds ``module``'s targets."""
        directory = self.root / "src" / module
        if module in self.prepared:
            return directory
        stubs: list[str] = []
        if module == "kubernetes":
            info = download(f"k8s.io/kubernetes@{K8S_VERSION}", self.logfile)
            requires = {"k8s.io/kubernetes": K8S_VERSION}
            tag = staging_tag(K8S_VERSION)
            staging = staging_modules(Path(info["GoMod"]), self.logfile)
            for mod, got in zip(
                staging, download_many([f"{m}@{tag}" for m in staging], self.logfile), strict=True
            ):
                if "Error" not in got:
                    requires[mod] = tag
                elif unpublished(got):
                    stubs.append(mod)
                else:
                    raise Unavailable(f"cannot download {mod}@{tag}: {got['Error']}")
            if stubs:
                log(f"the proxy does not serve {', '.join(stubs)} at {tag}; stubbed (not built)")
        else:
            download(f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}", self.logfile)
            requires = {"go.etcd.io/etcd/server/v3": ETCD_VERSION}
            requires["go.etcd.io/etcd/etcdctl/v3"] = ETCD_VERSION
        imports = [t.package for t in TARGETS if t.module == module]
        write_module(directory, f"kubeboot.local/real/{module}", requires, imports, stubs)
        log(f"resolving the {module} module graph (go mod tidy)")
        run_go(["mod", "tidy"], directory, self.logfile)
        self.prepared.add(module)
        return directory

    def build(self, target: Target) -> float:
        directory = self.prepare(target.module)
        out = self.bin / f".{target.name}.partial"
        flags = self.flags_for(target)
        env = go_env()
        env["CGO_ENABLED"] = "1" if target.cgo else "0"
        common = ["-p", str(self.parallel), "-trimpath", f"-tags={TAGS}", f"-ldflags={flags}"]
        if target.test:
            # -mod=mod: the suite's _test.go imports are not in tools.go's closure; let go add them.
            args = ["test", "-c", "-mod=mod", *common, "-o", str(out), target.package]
        else:
            args = ["build", *common, "-o", str(out), target.package]
        started = time.monotonic()
        log(f"building {target.name} ({target.package})")
        run_go(args, directory, self.logfile, env)
        out.chmod(0o755)
        out.replace(self.bin / target.name)
        self.stamp_path(target).write_text(stamp_of(target, self.go, flags) + "\n")
        return time.monotonic() - started

    def run(self, names: list[str]) -> int:
        self.go = go_version()
        self.bin.mkdir(parents=True, exist_ok=True)
        self.build_date = self._build_date()
        wanted = [t for t in TARGETS if not names or t.name in names]
        started = time.monotonic()
        timings: list[str] = []
        failed_optional: list[str] = []
        for target in wanted:
            if self.current(target):
                continue
            try:
                seconds = self.build(target)
            except BuildFailed as err:
                if not target.optional:
                    raise
                failed_optional.append(f"{target.name} ({err})")
                continue
            timings.append(f"{target.name} {seconds:.0f}s")
        total = time.monotonic() - started
        if timings:
            log("built " + ", ".join(timings) + f"; total {total:.0f}s")
            with (self.root / "build-times.log").open("a") as record:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
                record.write(f"{stamp} {self.go}: {', '.join(timings)}; total {total:.0f}s\n")
        else:
            log(f"all {len(wanted)} binaries current in {self.bin} ({total:.1f}s)")
        for failure in failed_optional:
            log(f"optional {failure} was not built")
        return 0

    def _build_date(self) -> str:
        """The release's commit time from the proxy's .info, not now: a reproducible stamp."""
        recorded = self.root / "build-date"
        if recorded.is_file():
            return recorded.read_text().strip()
        info = download(f"k8s.io/kubernetes@{K8S_VERSION}", self.logfile)
        with open(info["Info"]) as fh:
            when = str(json.load(fh)["Time"])
        date = when[:19] + "Z"
        recorded.write_text(date + "\n")
        return date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="build only these (default: all)")
    parser.add_argument("-p", "--parallel", type=int, default=2, help="go build -p (default 2)")
    parser.add_argument("--print-bin-dir", action="store_true", help="print the bin dir and exit")
    args = parser.parse_args(argv)
    root = cache_root()
    if args.print_bin_dir:
        print(root / "bin")
        return 0
    unknown = set(args.targets) - {t.name for t in TARGETS}
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; known: {[t.name for t in TARGETS]}")
    try:
        with locked(root):
            return Builder(root, args.parallel).run(args.targets)
    except Unavailable as err:
        print(f"real-build: UNAVAILABLE: {err}", file=sys.stderr)
        return 2
    except BuildFailed as err:
        print(f"real-build: FAILED: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
