"""A real Ray cluster on this machine for a test, started with the README's cluster commands
(``ray start`` as subprocesses, each node with its own temp folder, on 127.0.0.1), and stopped
by killing exactly the processes it started: never ``ray stop``, which stops every Ray on the
machine. Every process of the cluster carries the environment variable ``MARKER`` with this
cluster's own value (Ray's daemons and workers inherit their node's environment), and the stop
kills the processes that carry it (Linux: read from /proc). A watchdog process does the same
when the test process dies without stopping the cluster (killed, timed out)."""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

MARKER = "DELAYSNN_TEST_RAY_CLUSTER"
README_BLOCK = "**On a cluster.**"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_commands(readme: Path) -> dict[str, str]:
    """The README's cluster commands (the ```sh block after '**On a cluster.**'), by role:
    token, head, worker, sweep, stop. ValueError when the block lacks one or has others."""
    text = readme.read_text()
    if README_BLOCK not in text:
        raise ValueError(f"{readme} has no '{README_BLOCK}' section")
    block = text.split(README_BLOCK, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
    roles = {"token": r"^ray get-auth-token\b", "head": r"^ray start --head\b",
             "worker": r"^(\w+=\S+ )*ray start --address\b",
             "sweep": r"^python -m experiments\.sweep run\b", "stop": r"^ray stop$"}
    out = {}
    for role, pattern in roles.items():
        found = [ln for ln in lines if re.match(pattern, ln)]
        if len(found) != 1:
            raise ValueError(f"README cluster block: {len(found)} '{role}' command(s) in {lines}")
        out[role] = found[0]
    if len(lines) != len(out):
        raise ValueError(f"README cluster block: commands other than {sorted(out)}: {lines}")
    return out


def clean_env(home: Path, marker: str) -> dict[str, str]:
    """This process's environment without any RAY_* setting, with ``home`` as HOME (so
    ~/.ray/auth_token is the cluster's own), the environment's bin first on PATH (``ray``,
    ``python``), one BLAS thread and the cluster's marker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0",
               **{MARKER: marker})
    return env


def shell(command: str, env: dict[str, str], cwd: Path, timeout_s: float
          ) -> subprocess.CompletedProcess:
    """Run one README command line (``VAR=value`` prefixes included) in bash, in its own
    session; output captured."""
    return subprocess.run(["bash", "-c", command], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s, start_new_session=True)


def marked_pids(marker: str, folder: Path | None = None) -> set[int]:
    """Live processes (not zombies) whose environment holds ``MARKER=marker`` or whose command
    line names ``folder`` (the cluster's temp folder)."""
    want = f"{MARKER}={marker}".encode()
    out = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if want not in (d / "environ").read_bytes().split(b"\0") and (
                    folder is None or str(folder).encode() not in (d / "cmdline").read_bytes()):
                continue
            if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
        except (OSError, IndexError):
            continue            # gone, or not ours to read
        out.add(int(d.name))
    return out


def kill_marked(marker: str, folder: Path | None = None, timeout_s: float = 15.0) -> set[int]:
    """SIGKILL every process of :func:`marked_pids` until none is left; returns those still
    alive after ``timeout_s`` (empty when all are gone)."""
    deadline = time.monotonic() + timeout_s
    while True:
        pids = marked_pids(marker, folder)
        if not pids or time.monotonic() > deadline:
            return pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


class Cluster:
    """A head (no CPUs: tasks must run on a worker) and one worker node with 1 CPU, on
    127.0.0.1 with free ports, started by the README's commands with ``home`` as HOME (the
    token goes to ``home/.ray/auth_token``). ``address`` is HEAD:PORT for the sweep command."""

    def __init__(self, readme: Path, cwd: Path):
        self.commands = readme_commands(readme)
        self.cwd = cwd
        self.root = Path(tempfile.mkdtemp(prefix="rayc"))   # short: Ray's socket paths
        self.home = self.root / "home"
        self.home.mkdir()
        self.marker = uuid.uuid4().hex
        self.env = clean_env(self.home, self.marker)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log: list[str] = []
        # stops the cluster when our end of its stdin closes: at stop(), or when we die
        self.watchdog = subprocess.Popen([sys.executable, __file__, self.marker, str(self.root)],
                                         stdin=subprocess.PIPE, start_new_session=True)

    def command(self, role: str, extra: str = "") -> str:
        """The README's command for ``role`` with HEAD and port 6379 replaced, plus ``extra``."""
        cmd = self.commands[role].replace("HEAD", "127.0.0.1").replace("6379", str(self.port))
        return f"{cmd} {extra}".strip()

    def run(self, role: str, extra: str = "", timeout_s: float = 90.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        cmd = self.command(role, extra)
        r = shell(cmd, self.env if env is None else env, self.cwd, timeout_s)
        self.log.append(f"$ {cmd}\n[rc {r.returncode}]\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return r

    def start(self) -> str | None:
        """Token, head, worker; None when all started, else why the head could not start
        (the worker failing to join is an error, not a reason)."""
        nodes = "--disable-usage-stats --include-dashboard false"
        r = self.run("token")
        if r.returncode != 0:
            return f"`ray get-auth-token --generate` failed: {r.stderr.strip()[-300:]}"
        r = self.run("head", f"--num-cpus 0 --temp-dir {shlex.quote(str(self.root / 'h'))} "
                             f"{nodes}")
        if r.returncode != 0:
            return f"`ray start --head` failed: {(r.stdout + r.stderr).strip()[-500:]}"
        r = self.run("worker", f"--num-cpus 1 --temp-dir {shlex.quote(str(self.root / 'w'))} "
                               "--disable-usage-stats")
        if r.returncode != 0:
            raise RuntimeError("the worker node did not join the head:\n" + "\n".join(self.log))
        return None

    def stop(self) -> None:
        """Kill every process of the cluster; RuntimeError naming any left alive."""
        import shutil

        left = kill_marked(self.marker, self.root)
        assert self.watchdog.stdin is not None
        self.watchdog.stdin.close()
        self.watchdog.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
        if left:
            raise RuntimeError(f"Ray cluster processes left alive: {sorted(left)}")


if __name__ == "__main__":        # the watchdog: python ray_cluster.py MARKER FOLDER
    import shutil

    sys.stdin.read()
    kill_marked(sys.argv[1], Path(sys.argv[2]))
    shutil.rmtree(sys.argv[2], ignore_errors=True)
