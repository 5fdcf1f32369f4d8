"""Run one command in its own subprocess and measure it: wall time, the kernel's peak RSS of
the process tree, and a sampled peak of the tree's summed RSS.

The kernel's `ru_maxrss` of a child forked from this (50 MB) Python process starts at this
process's RSS: the high-water mark survives exec. So the command runs under `/usr/bin/time`,
a small C program whose own wait4 gives the command's true `ru_maxrss` (written to a file).
That covers the command and every descendant it waited for, as the largest single process;
a tool that forks workers would use more than that in total, so the tree is
also sampled (psutil, every SAMPLE_INTERVAL_S, in a thread so the wall time stays exact)
and the larger of the two is reported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_INTERVAL_S = 0.05  # 20 samples/s: cheap on 2 cores, fine enough for multi-second runs


@dataclass(frozen=True)
class Sample:
    """What one measured subprocess did."""

    returncode: int
    wall_s: float
    maxrss_kb: int  # kernel: largest single process in the tree (wait4 rusage)
    tree_peak_kb: int  # sampled: largest sum of RSS over the live tree
    timed_out: bool
    log: Path

    @property
    def peak_rss_mb(self) -> float:
        return max(self.maxrss_kb, self.tree_peak_kb) / 1024


TIME = "/usr/bin/time"  # Debian package `time`


def _tree_rss_kb(proc: psutil.Process, *, wrapped: bool) -> int:
    try:
        procs = [*([] if wrapped else [proc]), *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total // 1024


def run_measured(
    cmd: list[str],
    *,
    log: Path,
    timeout_s: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Sample:
    """Run `cmd` (stdout and stderr to `log`), kill its process group after `timeout_s`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    timed_out = threading.Event()
    done = threading.Event()
    tree_peak = [0]
    wrapped = os.access(TIME, os.X_OK)
    rss_file = log.with_suffix(".maxrss")
    rss_file.unlink(missing_ok=True)
    argv = [TIME, "-f", "%M", "-o", str(rss_file), *cmd] if wrapped else cmd
    with log.open("wb") as out:
        start = time.perf_counter()
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)

        def sample() -> None:
            try:
                proc = psutil.Process(popen.pid)
            except psutil.Error:
                return
            while not done.wait(SAMPLE_INTERVAL_S):
                tree_peak[0] = max(tree_peak[0], _tree_rss_kb(proc, wrapped=wrapped))

        timer = threading.Timer(timeout_s, kill)
        sampler = threading.Thread(target=sample, daemon=True)
        timer.start()
        sampler.start()
        try:
            # A blocking wait4 in this thread: the wall time ends when the child ends.
            _, status, rusage = os.wait4(popen.pid, 0)
            wall = time.perf_counter() - start
        finally:
            timer.cancel()
            done.set()
            sampler.join()
    popen.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    maxrss = 0  # unknown (no /usr/bin/time): the sampled tree peak stands alone
    if wrapped and rss_file.exists():
        # time(1) writes "Command exited with non-zero status N" before the number on failure.
        numbers = [ln for ln in rss_file.read_text().split() if ln.isdigit()]
        maxrss = int(numbers[-1]) if numbers else 0
    del rusage  # this is time(1)'s own rusage, polluted by the fork from this process
    return Sample(
        returncode=popen.returncode,
        wall_s=wall,
        maxrss_kb=maxrss,
        tree_peak_kb=tree_peak[0],
        timed_out=timed_out.is_set(),
        log=log,
    )
