"""Keep a long-running model process's memory flat.

glibc's malloc keeps freed blocks of torch's variable-sized activations in its heaps, so a
scorer's resident memory creeps up with every new batch shape. Serving large blocks from mmap
(returned to the system when freed) and trimming the heap sooner keeps it flat; measured in
docs/benchmarks.md. Other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_threshold: int = 64 * 1024, trim_threshold: int = 128 * 1024) -> bool:
    """Apply the thresholds to this process's glibc malloc; return whether it worked."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim_threshold)
    )
    logger.debug("malloc thresholds set: %s", ok)
    return ok
