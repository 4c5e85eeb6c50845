"""Who holds a message: each process's lease owner name, and whether an earlier process of
this host (a restarted container) is gone, so its messages can be taken over at once."""

from __future__ import annotations

import functools
import logging
import os
import socket
import tempfile
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)


def owner_gone(owner: str, *, me: str) -> bool:
    """Whether the process named `owner` (`host:pid:place-random`) is an earlier process of
    this host and place (`me`'s) that has ended: it had this process's own pid (a restarted
    container: same host name, same pid, same file system), or its pid is not running. A
    live process of the place is not gone; nor is a replica in another container that
    shares the host name (host networking: its pids are in another namespace), nor a
    process of another host (their leases must expire)."""
    host, pid, mine = [*me.split(":"), "", ""][:3]
    parts = owner.split(":")
    if owner == me or len(parts) < 3 or parts[0] != host or _place(parts[2]) != _place(mine):
        return False  # another host, or another container (its pids are not ours to see)
    return parts[1] == pid or _process_gone(parts[1])


def _place(tail: str) -> str:
    return tail.split("-", 1)[0]


def _process_gone(pid: str) -> bool:
    """Whether process `pid` of this host has ended."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (ValueError, OSError):  # not a number, or alive under another user
        return False
    return False


@functools.cache
def this_place() -> str:
    """An id of where this process runs (its container, or its user on a machine), kept in
    a file in the temporary folder: a restarted container finds the id its previous run
    wrote, while a replica in another container gets its own. Random for this process alone
    when the folder is not writable (then a restart waits for the leases to expire)."""
    path = Path(tempfile.gettempdir()) / f"actionbot-{os.getuid()}.place"
    try:
        found = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        found = ""
    if found.isalnum():
        return found
    made = uuid.uuid4().hex[:8]
    try:
        path.write_text(made, encoding="ascii")
    except OSError:
        logger.debug("cannot keep this process's place in %s", path)
    return made


def host_owner() -> str:
    """This process's lease owner name, `host:pid:place-random`: unique even when a
    restarted container's process has the same host name, pid and place as the one that
    died."""
    return f"{socket.gethostname()}:{os.getpid()}:{this_place()}-{uuid.uuid4().hex[:8]}"
