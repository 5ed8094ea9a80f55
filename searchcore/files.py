"""Reading one post file safely: only regular files, without blocking, never past
the size limit, and not outside the posts folder unless the operator allows it.

Whoever can put files into the posts folder can put more than posts there: a named
pipe (an ``open()`` that never returns), a link to ``/dev/zero`` (size 0, endless
bytes), a link to a private file elsewhere on the machine (its text would be served
to readers). So what a name refers to is decided before its bytes are trusted, and
decided from the descriptor actually opened: a ``stat`` followed by an ``open`` is a
race an attacker can win by swapping the file in between.

Linux first (``/proc/self/fd`` names the file behind a descriptor); elsewhere the
containment check falls back to ``os.path.realpath`` before opening.
"""

from __future__ import annotations

import os
import stat

from .model import Article
from .posts import Rejected, parse_post

_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}

# O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever.
# O_NOCTTY: a terminal device must never become the worker's controlling terminal.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_STEP = 1 << 20
# The largest post file read (--max-bytes): far above any real post, and a bound on
# what one file can cost a worker's memory.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a named pipe")."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def mb(n: float) -> str:
    """A size for a reason shown to the operator: 10 MB, 1.5 MB, 36 kB."""
    if n < 1048576:
        return f"{n / 1024:.0f} kB"
    v = n / 1048576
    return f"{v:.0f} MB" if v >= 10 or v == int(v) else f"{v:.1f} MB"


def too_large(size: int | None, max_bytes: int) -> Rejected:
    if size is None:
        return Rejected("too-large", f"more than {mb(max_bytes)} could be read, over the limit (--max-bytes)")
    return Rejected("too-large", f"file is {mb(size)}, over the {mb(max_bytes)} limit (--max-bytes)")


def is_inside(path: str, root: str) -> bool:
    """Whether a resolved path lies within a resolved folder (not merely shares a prefix)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def read_regular_file(
    path: str, max_bytes: int = DEFAULT_MAX_BYTES, root: str | None = None, follow_symlinks: bool = False
) -> bytes:
    """The bytes of ``path`` if it is a regular file, else ``Rejected`` with the reason.

    ``root`` is the posts folder, resolved (``os.path.realpath``); a file whose real
    location is outside it is refused (kind ``symlink-outside``) unless
    ``follow_symlinks``. Pipes, devices, sockets and folders are refused by kind
    (``not-a-file``) whatever the options: a link never makes a device a post.
    At most ``max_bytes + 1`` bytes are ever read, whatever the file's size claims.
    """
    try:
        lst = os.lstat(path)
    except OSError as exc:
        raise Rejected("unreadable", f"cannot stat file: {exc.strerror or exc}") from None
    link = stat.S_ISLNK(lst.st_mode)
    st = lst
    if link:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise Rejected("unreadable", f"a symbolic link that cannot be followed: {exc.strerror or exc}") from None
    # Refuse what is plainly not a post before opening it: opening a device can
    # have effects of its own (a tape rewinds, a watchdog starts counting).
    _check_regular(st.st_mode, link)
    guard = root is not None and not follow_symlinks
    if guard and link and not is_inside(os.path.realpath(path), root):
        raise _outside()
    if st.st_size > max_bytes:
        raise too_large(st.st_size, max_bytes)

    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise Rejected("unreadable", f"cannot open file: {exc.strerror or exc}") from None
    try:
        # The descriptor is the truth: the name may have been swapped since the checks above.
        st = os.fstat(fd)
        _check_regular(st.st_mode, link)
        if guard and not is_inside(_real_path(fd, path), root):
            raise _outside()
        if st.st_size > max_bytes:
            raise too_large(st.st_size, max_bytes)
        raw = _read_at_most(fd, max_bytes + 1, st.st_size)
    except OSError as exc:
        raise Rejected("unreadable", f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > max_bytes:  # it grew, or its size lied (files in /proc say 0)
        raise too_large(None, max_bytes)
    return raw


def _check_regular(mode: int, link: bool) -> None:
    if not stat.S_ISREG(mode):
        what = kind_of(mode)
        if link:
            raise Rejected("not-a-file", f"a symbolic link to {what}, not to a regular file; not read")
        raise Rejected("not-a-file", f"{what}, not a regular file; not read")


def _outside() -> Rejected:
    # The target is not named: the ledger and the screen may be seen by others.
    return Rejected(
        "symlink-outside", "a symbolic link to a file outside the posts folder; not read (--follow-symlinks allows it)"
    )


def _real_path(fd: int, path: str) -> str:
    """Where the open descriptor really points (Linux), else where the name resolves."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _read_at_most(fd: int, limit: int, hint: int) -> bytes:
    """Read until end of file or ``limit`` bytes, whichever comes first.

    ``hint`` (the size fstat claims) sizes the first read, so a normal file takes
    one read and no copy; the size is only a hint, the limit is what holds.
    """
    chunks: list[bytes] = []
    total = 0
    step = max(min(hint, limit - 1) + 1, 65536)
    while total < limit:
        b = os.read(fd, min(step, limit - total))
        if not b:
            break
        chunks.append(b)
        total += len(b)
        step = _READ_STEP
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_post(
    path: str, relpath: str, max_bytes: int = DEFAULT_MAX_BYTES, root: str | None = None, follow_symlinks: bool = False
) -> tuple[bytes, Article]:
    """Read one post file safely (``read_regular_file``) and parse it: the one way
    a post is read, by the indexer and by the tests' ground truth alike."""
    raw = read_regular_file(path, max_bytes, root=root, follow_symlinks=follow_symlinks)
    if not raw.strip():
        raise Rejected("empty-file", "empty file")
    return raw, parse_post(raw, relpath)
