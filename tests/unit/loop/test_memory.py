"""loop/memory.py: a model process gives its allocator's free pages back to the system."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")

HOLES = """
import psutil
from loop.memory import release_free_memory

process = psutil.Process()
blocks = [b"x" * 100_000 for _ in range(2_000)]  # 200 MB below the mmap threshold
del blocks[::2]
held = process.memory_info().rss
assert release_free_memory()
released = held - process.memory_info().rss
assert released > 50 * 2**20, f"only {released / 2**20:.0f} MB released"
assert sum(map(len, blocks)) == 1_000 * 100_000
"""


@glibc
def test_free_pages_in_the_middle_of_the_heap_go_back_to_the_system() -> None:
    """Every other block freed leaves holes that malloc keeps (nothing at the heap's top to
    trim); releasing gives their pages back while the kept blocks stay. In a process of its
    own: a test that started the API in this one (``tune_malloc``) serves such blocks from
    mmap, and there would be no holes to give back."""
    done = subprocess.run([sys.executable, "-c", HOLES], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
