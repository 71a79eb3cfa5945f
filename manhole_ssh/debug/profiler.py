"""``top()`` and ``profile()``: a sampling profiler of every thread, from inside the process.

The statement's own thread (a manhole worker) wakes 100 times a second, reads every
thread's current frame with ``sys._current_frames()`` and counts the stacks it sees: no
ptrace, no trace or profile function, nothing installed in the host's threads. A sample
costs the host one pass over its stacks while holding the GIL (measured in
``bench/profiler_cost.py``). Ctrl-C stops sampling early and still shows what was seen.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from ..green import originals
from .live import refuse_on_the_host_loop
from .registry import register
from .report import Report
from .stacks import is_manhole_thread, known_threads, thread_cpu_seconds

__all__ = ["Samples", "profile", "sample", "top"]

HERTZ = 100
_MAX_DEPTH = 256

_sleep = originals.original("time", "sleep")


class Samples:
    """Stacks seen, counted. A sample keeps the code objects only (cheap: the GIL is held
    meanwhile); they are named when the report is made."""

    def __init__(self) -> None:
        # (thread name, (id of code, …) innermost first) -> samples: ids, because a code
        # object's hash is computed anew each time (from its name, bytecode, constants…)
        self._raw: Counter[tuple[str, tuple[int, ...]]] = Counter()
        self._codes: dict[int, CodeType] = {}  # (which also keeps each id's code alive)
        # Thread -> its top frame at the last sample, where it was, and its stack then. A
        # thread still at the same instruction of the same frame has the same callers (an
        # idle thread, most of a service's): its stack is not walked again. (This holds the
        # top frame until the next sample, 10 ms, or the end of sampling for a thread that
        # ended meanwhile: never longer.)
        self._last: dict[int, tuple[FrameType, int, tuple[int, ...]]] = {}
        self.count = 0  # sampling passes
        self.seconds = 0.0
        self.interrupted = False
        self.cpu: dict[str, float] = {}
        self._labels: dict[CodeType, str] = {}

    def label(self, code: CodeType) -> str:
        label = self._labels.get(code)
        if label is None:
            module = os.path.basename(code.co_filename)
            label = f"{code.co_qualname}({module}:{code.co_firstlineno})"
            self._labels[code] = label
        return label

    def take(self, skip: int, names: dict[int, str]) -> None:
        """One pass over every thread but ``skip`` (the sampling one)."""
        frames = sys._current_frames()
        raw, known, last = self._raw, self._codes, self._last
        try:
            for ident, top in frames.items():
                name = names.get(ident)
                if name is None or ident == skip:
                    continue
                seen = last.get(ident)
                if seen is not None and seen[0] is top and seen[1] == top.f_lasti:
                    raw[(name, seen[2])] += 1
                    continue
                codes: list[int] = []
                append = codes.append
                frame: Any = top
                while frame is not None:
                    code = frame.f_code
                    code_id = id(code)
                    if code_id not in known:
                        known[code_id] = code
                    append(code_id)
                    frame = frame.f_back
                stack = tuple(codes)
                last[ident] = (top, top.f_lasti, stack)
                raw[(name, stack)] += 1
        finally:
            del frames
        self.count += 1

    def let_go(self) -> None:
        """Drop the frames held between samples (sampling is over)."""
        self._last.clear()

    @property
    def stacks(self) -> Counter[tuple[str, tuple[str, ...]]]:
        """``(thread name, (function label, …) outermost first) -> samples``; the deepest
        stacks cut to their innermost ``_MAX_DEPTH`` calls."""
        named: Counter[tuple[str, tuple[str, ...]]] = Counter()
        for (thread, codes), count in self._raw.items():
            labels = tuple(
                self.label(self._codes[code_id]) for code_id in reversed(codes[:_MAX_DEPTH])
            )
            named[(thread, labels)] += count
        return named

    def hottest(self, limit: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """Functions by self samples (at the top of a stack) and total (anywhere in it)."""
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for (_, stack), count in self.stacks.items():
            if stack:
                own[stack[-1]] += count
            for label in set(stack):
                total[label] += count
        return own.most_common(limit), total.most_common(limit)

    def collapsed(self) -> str:
        """Brendan Gregg's collapsed stacks (``thread;outer;…;inner count``), which
        flamegraph.pl, inferno and speedscope read."""
        return "".join(
            f"{';'.join((thread.replace(';', ':'), *stack))} {count}\n"
            for (thread, stack), count in sorted(self.stacks.items())
        )


def sample(seconds: float, include_manhole: bool = False) -> Samples:
    """Sample every thread (the manhole's own too with ``include_manhole``) at 100 Hz for
    ``seconds``, in this thread; Ctrl-C ends it early."""
    samples = Samples()
    me = originals.get_ident()
    threads = known_threads()
    names = {ident: thread.name for ident, thread in threads.items()}
    if not include_manhole:
        names = {
            ident: name for ident, name in names.items() if not is_manhole_thread(threads[ident])
        }
    cpu_before = {
        ident: thread_cpu_seconds(getattr(threads[ident], "native_id", None)) for ident in names
    }
    started = time.monotonic()
    next_sample = started
    try:
        print(
            f"Sampling every thread at {HERTZ} Hz for {seconds:g} s (Ctrl-C stops it early)…",
            file=sys.stderr,
            flush=True,
        )
        while True:
            now = time.monotonic()
            if now - started >= seconds:
                break
            if now >= next_sample:
                if samples.count % HERTZ == HERTZ - 1:  # once a second: threads started since
                    _add_new_threads(names, include_manhole)
                samples.take(me, names)
                next_sample += 1 / HERTZ
                if next_sample < now:  # fell behind (the GIL was busy): do not burst
                    next_sample = now + 1 / HERTZ
            _sleep(max(0.0, next_sample - time.monotonic()))
    except KeyboardInterrupt:
        samples.interrupted = True
    samples.seconds = time.monotonic() - started
    samples.let_go()
    for ident, before in cpu_before.items():
        after = thread_cpu_seconds(getattr(threads[ident], "native_id", None))
        if before is not None and after is not None:
            samples.cpu[names[ident]] = after - before
    return samples


def _add_new_threads(names: dict[int, str], include_manhole: bool) -> None:
    for ident, thread in known_threads().items():
        if ident not in names and (include_manhole or not is_manhole_thread(thread)):
            names[ident] = thread.name


def _report(samples: Samples, limit: int, extra: dict[str, Any]) -> Report:
    own, total = samples.hottest(limit)
    passes = max(samples.count, 1)
    data = {
        "seconds": round(samples.seconds, 3),
        "samples": samples.count,
        "interrupted": samples.interrupted,
        "self": [{"function": label, "samples": n, "share": n / passes} for label, n in own],
        "total": [{"function": label, "samples": n, "share": n / passes} for label, n in total],
        "thread_cpu_seconds": {name: round(cpu, 3) for name, cpu in samples.cpu.items()},
        **extra,
    }
    stopped = " (stopped by Ctrl-C)" if samples.interrupted else ""
    lines = [
        f"{samples.count} samples of every thread in {samples.seconds:.1f} s{stopped}; "
        "share = fraction of samples a function was in (1.00: in every sample of a thread)."
    ]
    for title, rows in (
        ("By self time (at the top of the stack):", own),
        ("By total time (anywhere in the stack):", total),
    ):
        lines.append(title)
        lines += [f"  {count / passes:6.2f}  {label}" for label, count in rows]
    busy = sorted(samples.cpu.items(), key=lambda item: -item[1])[:limit]
    if busy:
        lines.append("CPU used meanwhile, by thread:")
        lines += [f"  {cpu:7.3f} s  {name}" for name, cpu in busy]
    if extra.get("path"):
        lines.append(f"Collapsed stacks written to {extra['path']} (speedscope, flamegraph.pl).")
    return Report(data, "\n".join(lines))


def top(seconds: float = 5, limit: int = 15, include_manhole: bool = False) -> Report:
    """Sample every thread of the host for ``seconds`` (100 Hz; Ctrl-C ends it early) and
    show the hottest functions, by self and by total time, and each thread's CPU time."""
    refuse_on_the_host_loop("top")
    return _report(sample(seconds, include_manhole), limit, {})


def profile(
    seconds: float = 10,
    path: str | os.PathLike[str] | None = None,
    limit: int = 30,
    include_manhole: bool = False,
) -> Report:
    """Like ``top()``, longer; with ``path``, also write the stacks there in the collapsed
    format (``thread;outer;…;inner count`` per line) that speedscope and flamegraph read.
    The file is made with mode 0600 (stacks name the host's code)."""
    refuse_on_the_host_loop("profile")
    samples = sample(seconds, include_manhole)
    extra: dict[str, Any] = {}
    if path is not None:
        target = Path(path)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as collapsed:
            collapsed.write(samples.collapsed())
        extra["path"] = str(target)
    return _report(samples, limit, extra)


register("top", top, "sample every thread for a few seconds: hottest functions, CPU by thread")
register("profile", profile, "sampling profile of every thread; path= writes collapsed stacks")
