"""Child processes that do not outlive the process that started them.

The embedded broker and database, and `trialstream up`'s service processes, run in their
own sessions so that Ctrl-C reaches only their parent, which stops them in order. The
price: when the parent is killed outright (kill -9, a test run's timeout, an OOM kill) no
one stops them, and they would hold ports and memory until the machine restarts. On Linux
the kernel can deliver a signal to a child when its parent dies (PR_SET_PDEATHSIG); that
is what `tied_to_parent` asks for. Elsewhere it changes nothing.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved once, here: the hook runs in the child between fork and exec, where it must
# do nothing but the system call (no imports, no allocation worth speaking of).
_PRCTL = _load_prctl()


def tied_to_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the child gets `sig` when this process dies.

    The kernel ties the child to the thread that forked it, so this is only offered from
    the main thread (whose end is the process's end); from another thread it is None."""
    if _PRCTL is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl = _PRCTL

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)

    return set_parent_death_signal
