"""A node's host for the real kubelet: a private mount namespace and a supervisor, as systemd.

Run by :mod:`tests.real.kubelet_node` as ``unshare --mount --propagation private -- python
nodehost.py <spec.json>``, so every mount below exists only in this process's namespace and
vanishes with it; the host is never changed (facts/real-k8s.md):

* ``private_dirs`` (``/var/lib/kubelet``, where the kubelet writes ``device-plugins`` whatever
  ``--root-dir`` says; ``/etc/kubernetes`` for ``kubeadm join``) get a tmpfs each. A directory
  the host lacks is made inside an overlay of its parent whose upper layer is scratch, so not
  even an empty directory is left behind;
* ``sysctls`` (``kernel/panic`` …): read-only bind mounts of files holding the values the
  kubelet expects over ``/proc/sys/<name>``, so ``protectKernelDefaults: true`` passes without
  the kubelet (or anyone) writing the host's tunables.

Then it runs, inside the namespace, an optional ``first`` command once (``kubeadm join``) and
the kubelet under a supervisor: started when ``wait_for`` exists (systemd's
``ConditionPathExists``), restarted ``restart_delay`` seconds after any exit (``Restart=always``),
its arguments completed from kubeadm's ``kubeadm-flags.env`` as the kubeadm drop-in does. The
status file records every start and exit, so a test can tell a kubelet that lived from one
that was restarted. SIGTERM stops everything.

Standalone on purpose (no kubeboot imports): it is the only code that runs in the namespace.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _private_dir(path: Path, scratch: Path, index: int) -> None:
    if not path.is_dir():
        parent = path.parent
        while not parent.is_dir():
            parent = parent.parent
        upper, work = scratch / f"upper{index}", scratch / f"work{index}"
        upper.mkdir()
        work.mkdir()
        _run(
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={parent},upperdir={upper},workdir={work}",
            str(parent),
        )
        path.mkdir(parents=True)
    _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(path))


def _pin_sysctl(name: str, value: str, scratch: Path) -> None:
    holder = scratch / ("sysctl-" + name.replace("/", "-"))
    holder.write_text(value + "\n")
    target = f"/proc/sys/{name}"
    _run("mount", "--bind", str(holder), target)
    _run("mount", "-o", "remount,bind,ro", target)


class Supervisor:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.status_file = Path(spec["status_file"])
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.status: dict[str, Any] = {
            "pid": os.getpid(),
            "ready": False,
            "kubelet_starts": 0,
            "kubelet_exits": [],
            "first_exit": None,
        }
        self.kubelet: subprocess.Popen[bytes] | None = None
        self.first: subprocess.Popen[bytes] | None = None

    def save(self, **changes: Any) -> None:
        with self.lock:
            self.status.update(changes)
            tmp = self.status_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.status))
            tmp.replace(self.status_file)

    def setup(self) -> None:
        scratch = Path(self.spec["scratch"])
        scratch.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", str(scratch))
        for index, directory in enumerate(self.spec.get("private_dirs", [])):
            _private_dir(Path(directory), scratch, index)
        for name, value in self.spec.get("sysctls", {}).items():
            _pin_sysctl(name, value, scratch)
        self.save(ready=True)

    def _start(self, argv: list[str], log: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            return subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
            )

    def run_first(self) -> None:
        first = self.spec.get("first")
        if not first:
            return
        self.first = self._start(first["argv"], first["log"], first.get("env", {}))
        code = self.first.wait()
        self.save(first_exit=code)

    def _kubelet_argv(self, kubelet: dict[str, Any]) -> list[str]:
        argv = list(kubelet["argv"])
        env_file = kubelet.get("env_file")
        if env_file and Path(env_file).is_file():
            for line in Path(env_file).read_text().splitlines():
                name, _, value = line.partition("=")
                if name.strip() == "KUBELET_KUBEADM_ARGS":
                    argv += shlex.split(value.strip().strip('"'))
        return argv + list(kubelet.get("extra_args", []))

    def run_kubelet(self) -> None:
        kubelet = self.spec.get("kubelet")
        if not kubelet:
            return
        wait_for = kubelet.get("wait_for")
        delay = float(kubelet.get("restart_delay", 3))
        while not self.stopping.is_set():
            if wait_for and not Path(wait_for).exists():
                self.stopping.wait(0.5)
                continue
            self.kubelet = self._start(self._kubelet_argv(kubelet), kubelet["log"], {})
            with self.lock:
                self.status["kubelet_starts"] += 1
            self.save()
            code = self.kubelet.wait()
            if self.stopping.is_set():
                break
            with self.lock:
                self.status["kubelet_exits"].append(code)
            self.save()
            self.stopping.wait(delay)

    def stop(self, *_: object) -> None:
        self.stopping.set()
        for proc in (self.first, self.kubelet):
            if proc is not None and proc.poll() is None:
                proc.terminate()

    def main(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.setup()
        first = threading.Thread(target=self.run_first, daemon=True)
        first.start()
        self.run_kubelet()
        self.stopping.wait()
        for proc in (self.first, self.kubelet):
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.save(stopped=True)
        return 0


if __name__ == "__main__":
    sys.exit(Supervisor(json.loads(Path(sys.argv[1]).read_text())).main())
