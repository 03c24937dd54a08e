"""Ending a `workshop` process without Python's teardown of every module and object.

The local commands (invoke, send, start-api ...) and the bench's probes hold all of moto's services and
botocore's models: taking those apart one object at a time, after the last line is printed, was 0.8 s of
a 2.4 s `workshop invoke` (measured on 2 cores). What the teardown does that matters is kept: threads
still running are waited for (as Python waits for them), atexit functions run (logging's flush,
temporary folders, multiprocessing's children), and the output is flushed.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away after the last print (`workshop check | head`): quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = code or 1
    sys.stderr.flush()
    os._exit(code)
