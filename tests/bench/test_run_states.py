"""``bench/run_states.py`` says which threads of a process could run: a thread that spins is
counted runnable, one that sleeps is not, and the summary names them as the caller knows them.
Measured on a real child process (one spinning thread, one sleeping), not on made-up states."""

from __future__ import annotations

import subprocess
import sys

from bench import run_states

CHILD = """
import sys, threading, time
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
print(threading.get_native_id(), flush=True)  # the main thread, which sleeps
time.sleep(60)
"""


def test_a_spinning_thread_is_runnable_and_a_sleeping_one_is_not():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        sleeper = int(child.stdout.readline())
        states = run_states.sample(child.pid, set(), interval=0.002, seconds=0.5)
    finally:
        child.kill()
        child.wait()
    threads = {int(tid): counts for tid, counts in states["threads"].items()}
    spinner = [tid for tid in threads if tid != sleeper]
    assert len(spinner) == 1
    runnable, alone = threads[spinner[0]]
    # A busy machine may keep the spinner off a core now and then; it is still runnable then.
    assert runnable >= 0.9 * states["samples"]
    # Alone nearly always: the sleeper may be runnable for a sample as it wakes (its print
    # and flush just before the sampling began, say); one such sample failed a run.
    assert runnable - alone <= 0.02 * states["samples"]
    assert threads.get(sleeper, [0, 0])[0] <= 0.1 * states["samples"]
    assert states["combos"].get("ours", 0) >= 0.9 * states["samples"]


def test_the_summary_names_threads_and_shares():
    states = {"samples": 200, "combos": {"imap+ours": 120, "ours": 50, "none": 30},
              "threads": {"11": [150, 40], "12": [30, 10], "13": [5, 0]}}
    lines = run_states.summary(states, {11: "prefetch_0", 12: "imap_0"})
    assert lines[:3] == ["   60.0 %  imap+ours", "   25.0 %  ours", "   15.0 %  none"]
    assert lines[3] == ("  thread prefetch_0: could run 75.0 % of the samples, "
                        "the only thing that could 20.0 %")
    assert lines[4].startswith("  thread imap_0: could run 15.0 %")
    assert lines[5].startswith("  thread a thread that ended: could run 2.5 %")
