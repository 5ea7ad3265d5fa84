"""Answer Ctrl-C at once, even while the main thread is busy.

Python turns SIGINT into ``KeyboardInterrupt`` only when the main thread next runs Python code: during a
long model call or while it waits for videos to be finished, a user who pressed Ctrl-C saw nothing for
seconds. ``signal.set_wakeup_fd`` makes the C-level handler write the signal's number to a pipe the moment
it arrives; a small thread waiting on that pipe calls back right then. The ``KeyboardInterrupt`` itself is
unchanged: the main thread still stops where it did before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def acknowledge_interrupt(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block, call ``callback()`` from a helper thread as soon as the first SIGINT arrives.
    Outside the main thread (where signals cannot be watched) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except (ValueError, OSError):  # e.g. an embedding that owns the signals
        os.close(read_end)
        os.close(write_end)
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if done.is_set() or not data:
                return
            if signal.SIGINT in data:
                callback()
                return

    watcher = threading.Thread(target=watch, name="skyforecast-ctrl-c", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        done.set()
        with contextlib.suppress(OSError):
            os.write(write_end, b"\0")  # wake the watcher so it can end
        watcher.join(timeout=1)
        os.close(write_end)
        if not watcher.is_alive():
            os.close(read_end)
