"""What every benchmark needs: keys, a host process with a manhole, the real ssh client,
a terminal that answers cursor-position requests, and a row of the results table."""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pyte

from tests.support.ssh import AnsweringScreen
from tests.support.ssh import ssh_argv as ssh_argv  # shared with tests/: see tests/support

HOST_SCRIPT = Path(__file__).with_name("host.py")


@dataclass(frozen=True)
class Row:
    figure: str
    ours: str
    baseline: str
    target: str
    met: bool | None  # None: not measurable here

    def cells(self) -> list[str]:
        verdict = {True: "yes", False: "NO", None: "n/a"}[self.met]
        return [self.figure, self.ours, self.baseline, self.target, verdict]


def print_rows(rows: Sequence[Row]) -> None:
    header = ["figure", "manhole-ssh", "baseline (same run)", "target", "met"]
    table = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    for number, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def p99_ms(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


@dataclass(frozen=True)
class Keys:
    client_key: Path
    authorized_keys: Path
    host_key: Path


@contextmanager
def keys() -> Iterator[Keys]:
    with tempfile.TemporaryDirectory(prefix="manhole-bench-") as folder:
        base = Path(folder)
        base.chmod(0o700)
        for name in ("id_ed25519", "ssh_host_ed25519_key"):
            subprocess.run(
                [sys.executable, "-m", "manhole_ssh", "keygen", str(base / name)],
                check=True,
                capture_output=True,
            )
        authorized = base / "authorized_keys"
        authorized.write_bytes((base / "id_ed25519.pub").read_bytes())
        authorized.chmod(0o600)
        yield Keys(base / "id_ed25519", authorized, base / "ssh_host_ed25519_key")


class Host:
    """bench/host.py in a process of its own; ``port`` is its manhole's (0: none of ours).

    Its stderr goes to a file: a line or more there is summed up on stderr at ``close()``.
    """

    def __init__(self, bench_keys: Keys, *options: str) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(HOST_SCRIPT),
                str(bench_keys.authorized_keys),
                str(bench_keys.host_key),
                *options,
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.close()
            raise RuntimeError(f"the bench host did not start: {line!r}")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.process.pid

    def ask(self, request: str) -> list[int]:
        """One request to the host (see bench/host.py); its answer's numbers."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{request}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer or answer.startswith("ERROR"):
            raise RuntimeError(f"the bench host answered {answer!r} to {request!r}")
        return [int(field) for field in answer.split()]

    def cpu_ms(self) -> float:
        """CPU time the host has used so far, all its threads, in ms (ns precision)."""
        return self.ask("CPU")[0] / 1e6

    def cpu_ms_but_busy(self) -> float:
        """The same, less the ``--busy`` thread's (all of it without ``--busy``)."""
        _, _, process_ns, busy_ns, _ = self.ask("LOOPS")
        return (process_ns - busy_ns) / 1e6

    def settle(self, window: float = 0.2, below_ms: float = 1.0, timeout: float = 15) -> bool:
        """Wait until the host used under ``below_ms`` of CPU in a ``window``, i.e. new
        sessions have drawn, answered and gone quiet; False if not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.cpu_ms_but_busy()
            time.sleep(window)  # a measured window, not a guess at a delay
            if self.cpu_ms_but_busy() - before < below_ms:
                return True
        return False

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").splitlines()
        self._stderr.close()
        if lines:
            first = max(set(lines), key=lines.count)
            print(f"(bench host stderr: {len(lines)} lines, most often {first!r})", file=sys.stderr)


class Terminal:
    """A program in a real PTY, drawn by a VT100 emulator that answers ESC[6n."""

    def __init__(self, argv: Sequence[str], columns: int = 100, rows: int = 30) -> None:
        self.child = pexpect.spawn(
            argv[0],
            list(argv[1:]),
            encoding="utf-8",
            codec_errors="replace",
            dimensions=(rows, columns),
            env={**os.environ, "PYTHONSTARTUP": ""},
        )
        self.child.delaybeforesend = None
        self.screen = AnsweringScreen(columns, rows, self.child.send)
        self.stream = pyte.Stream(self.screen)

    def wait_for(self, predicate: Callable[[pyte.Screen], bool], timeout: float = 20) -> float:
        """Read until ``predicate`` holds for the screen; return when the bytes that made
        it true arrived (``perf_counter``). The emulator's own time to draw them is left
        out: pyte is pure Python and far slower than a real terminal."""
        deadline = time.monotonic() + timeout
        arrived = time.perf_counter()
        while not predicate(self.screen):
            if time.monotonic() > deadline:
                raise TimeoutError("\n".join(self.screen.display))
            try:
                data = self.child.read_nonblocking(65536, timeout=0.05)
            except pexpect.TIMEOUT:
                continue
            arrived = time.perf_counter()
            self.stream.feed(data)
        return arrived

    def close(self) -> None:
        self.child.close(force=True)


def at_empty_prompt(prompt: str = ">>>") -> Callable[[pyte.Screen], bool]:
    def check(screen: pyte.Screen) -> bool:
        return bool(screen.display[screen.cursor.y].rstrip() == prompt)

    return check


def seconds_to_prompt(argv: Sequence[str]) -> float:
    """From starting ``argv`` (an ssh command line) in a terminal to its empty prompt."""
    started = time.perf_counter()
    terminal = Terminal(argv)
    try:
        return terminal.wait_for(at_empty_prompt()) - started
    finally:
        terminal.close()


def shows(text: str) -> Callable[[pyte.Screen], bool]:
    return lambda screen: any(text in line for line in screen.display)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")
