"""Keep a long-running model process's memory flat.

glibc's malloc keeps freed blocks of torch's variable-sized activations in its heaps, so a
model process's resident memory creeps up with every new batch shape. Two remedies, measured
in docs/benchmarks.md; other C libraries are left alone:

* :func:`release_free_memory` after each batch (the scorer): the heaps' free pages go back to
  the system once a batch is done, and the next batch takes them again once;
* :func:`tune_malloc` at start-up (the API, the training rounds): large blocks come from mmap
  and go back when freed. That costs page faults at every allocation: in the scorer, whose
  forward passes allocate and free many large blocks a batch, it cost about a quarter of its
  throughput.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_LIBC = _libc()


def release_free_memory() -> bool:
    """Return the free pages of glibc's heaps to the system (``malloc_trim``); whether this C
    library can. The cost is the next batch faulting those pages in again, once."""
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def tune_malloc(mmap_threshold: int = 64 * 1024, trim_threshold: int = 128 * 1024) -> bool:
    """Apply the thresholds to this process's glibc malloc; return whether it worked."""
    mallopt = getattr(_LIBC, "mallopt", None)
    if mallopt is None:
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim_threshold)
    )
    logger.debug("malloc thresholds set: %s", ok)
    return ok
