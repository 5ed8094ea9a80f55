"""The indexing run: scan, skip what is unchanged, process in parallel, write in
batches, delete what disappeared, and report every rejected file with its reason.

Files are always processed in worker processes of our own pool (``_Pool``), never
in the indexer itself: each file has a time budget, and a worker that overruns it
or dies is killed and replaced, costing the run that one file.

Plain functions over a Settings object; ``indexer.cli`` only wraps them.
"""

from __future__ import annotations

import array
import heapq
import json
import logging
import mmap
import multiprocessing
import os
import pickle
import re
import select
import signal
import socket
import stat
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path

from searchcore.analysis import load_user_dict
from searchcore.config import Settings
from searchcore.engines import Engine, open_engine
from searchcore.files import is_inside
from searchcore.indexing import FileOutcome, init_worker, process_file
from searchcore.posts import DEFAULT_MAX_BYTES, POST_SUFFIXES

from .manifest import Entry, Manifest, manifest_path, replace_manifest

log = logging.getLogger("indexer")


@dataclass
class Rejection:
    path: str
    kind: str
    reason: str


@dataclass
class FileWarning:
    """Something the parser changed in an indexed file without refusing it."""

    path: str
    message: str


@dataclass
class RunReport:
    """What a run did; printed at the end, saved as JSON, read by ``status``."""

    command: str
    source: str
    engine: str
    index: str | None = None
    started: str = ""
    seconds: float = 0.0
    read: int = 0
    indexed: int = 0
    unchanged: int = 0
    deleted: int = 0
    rejected: int = 0
    dry_run: bool = False
    would_delete: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[FileWarning] = field(default_factory=list)
    documents: int = 0

    @property
    def rate(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"read {self.read}, indexed {self.indexed}, unchanged {self.unchanged}, deleted {self.deleted}, "
            f"rejected {self.rejected}, warnings {len(self.warnings)} in {self.seconds:.1f} s ({self.rate:.0f} articles/s); "
            f"{self.documents} documents in {self.engine} index {self.index}"
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rate"] = round(self.rate, 1)
        return d


def scan(root: Path) -> Iterator[tuple[str, str]]:
    """(path, relative path) of post files under ``root``, in a stable order;
    hidden folders are skipped. Plain strings, not Path objects: a million of
    them must stay cheap.

    Links to folders are never followed, with or without --follow-symlinks: no
    loops, and no tree of someone else's files pulled in by one link. Links to
    files are listed; whether they are read is up to ``searchcore.files``
    (inside the folder yes, outside only with --follow-symlinks, devices never).
    """
    root = Path(root)
    if root.is_file():
        yield str(root), root.name
        return
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False, onerror=None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, base)
        prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(POST_SUFFIXES):
                continue
            yield os.path.join(dirpath, name), prefix + name


@dataclass
class Options:
    workers: int = 0  # 0 = one per core
    batch_size: int = 500  # articles per engine write
    commit_docs: int = 20_000  # commit at least this often (articles) ...
    commit_seconds: float = 10.0  # ... and at least this often (seconds)
    max_bytes: int = DEFAULT_MAX_BYTES
    dry_run: bool = False
    delete: bool = True
    keep_old: bool = False
    file_timeout: float = 10.0  # seconds one file may take in a worker; 0 = no limit
    follow_symlinks: bool = False  # read links to files outside the posts folder


# Rejections that depend on the options or on the moment rather than on the file
# alone: an unchanged file rejected for one of these is looked at again on the
# next run (a larger --max-bytes or --file-timeout, --follow-symlinks, a machine
# less loaded, permissions fixed without touching the file).
RECHECK_KINDS = frozenset({"timeout", "crashed", "too-large", "symlink-outside", "unreadable"})


def _plan(manifest: Manifest, source: Path, report: RunReport, opts: Options | None = None, page: int = 500) -> int:
    """Scan ``source`` against the manifest: count what is unchanged, note every
    path seen and every file to process in the manifest's temporary tables.

    Files are stat-ed and looked up a page at a time, so a million posts cost a
    million rows on disk, not a million objects in memory. Returns how many
    files are to be processed.

    An unchanged link to a file outside the folder is processed again unless
    --follow-symlinks: it may have been indexed by a run that allowed it.
    """
    opts = opts or Options()
    root = None if opts.follow_symlinks else _root_of(source)
    manifest.begin_scan()
    todo_count = 0

    def check(batch: list[tuple[str, str]]) -> None:
        nonlocal todo_count
        named = []
        for path, rel in batch:
            if _valid_name(rel):
                named.append((path, rel))
            else:  # the manifest, the engines and the report all need text
                shown_rel = os.fsencode(rel).decode("utf-8", "backslashreplace")
                report.rejections.append(Rejection(shown_rel, "bad-name", "the file name is not valid UTF-8: rename the file"))
        known = manifest.lookup([rel for _, rel in named])
        todo: list[tuple[str, str, int, int]] = []
        for path, rel in named:
            try:
                st = os.lstat(path)  # as cheap as stat, and says which files are links
                link = stat.S_ISLNK(st.st_mode)
                if link:
                    st = os.stat(path)
            except OSError as exc:
                report.rejections.append(Rejection(rel, "unreadable", f"cannot stat file: {exc.strerror or exc}"))
                continue
            e = known.get(rel)
            if (
                e
                and not (link and root is not None and not is_inside(os.path.realpath(path), root))
                and e.status != "pending"
                and e.size == st.st_size
                and e.mtime_ns == st.st_mtime_ns
                and e.kind != "duplicate"
                and not (e.status == "rejected" and e.kind in RECHECK_KINDS)
            ):
                report.unchanged += 1
                if e.status == "rejected":
                    report.rejections.append(Rejection(rel, e.kind or "rejected", e.reason or ""))
                else:
                    report.warnings.extend(FileWarning(rel, m) for m in _load_warnings(e.warnings))
                continue
            todo.append((path, rel, st.st_size, st.st_mtime_ns))
        manifest.saw([rel for _, rel in named], todo)
        todo_count += len(todo)

    batch: list[tuple[str, str]] = []
    for item in scan(source):
        report.read += 1
        batch.append(item)
        if len(batch) >= page:
            check(batch)
            batch = []
    if batch:
        check(batch)
    return todo_count


# -- worker processes ------------------------------------------------------------
#
# concurrent.futures cannot stop one worker, so this is a small pool of our own:
#
#   indexer --fork, before the engine writer exists--> spawner --fork--> workers
#
# The spawner is forked once, before the writer, and does nothing but fork workers
# and report how they ended. Every worker, first or replacement, is forked from it,
# so none ever inherits the writer (its lock file, its threads), even one started in
# the middle of a run. Each worker has its own socket to the indexer: chunks of
# files in, the chunk's outcomes out (one message per chunk: a message per file
# cost a tenth of the throughput in wake-ups on two cores). Which file a worker is
# on, and since when, it writes into its slot of a small shared memory page; at the
# deadline the indexer kills the worker, rejects that one file, and gives the rest
# of the chunk (done or not: the dead worker's answers died with it) to a fresh
# worker. A worker that dies on its own costs its file the same way. The slot also
# says when a worker is between files (answering, waiting for work): no budget runs
# then, so an indexer busy writing to its engine never makes a file look slow.
# PR_SET_PDEATHSIG chains indexer -> spawner -> workers: SIGKILL the indexer and
# none of them outlives it.
#
# Nothing the indexer sends can block it: at most _INBOX_BYTES of chunks wait
# unanswered in a worker's socket, well under the socket's buffer, so a worker that
# never reads again (stuck in one file) cannot stall the indexer that must kill it.

_REC = struct.Struct("=cqi")  # spawner -> indexer: b"S", pid (+ its pidfd) | b"X", pid, wait status
_ASK = struct.Struct("=cq")  # indexer -> spawner: b"S", slot (+ the worker's socket) | b"Q"
_SLOT = struct.Struct("=qd")  # per worker: sequence number of the file it is on (-1: none), since (monotonic)
_SLOT_SIZE = 64  # one cache line each
_CHUNK_BYTES = 16 * 1024  # one chunk message stays under this (split otherwise) ...
_INBOX_BYTES = 64 * 1024  # ... and a worker has at most this much unanswered in its socket
_Item = tuple[int, str, str, int, int]  # (sequence number, path, relative path, size, mtime_ns)


class PoolError(RuntimeError):
    """The worker processes cannot go on (their spawner is gone): the run fails."""


class _Worker:
    __slots__ = ("pid", "pidfd", "conn", "slot", "pending", "chunks", "unanswered_bytes", "heard")

    def __init__(self, pid: int, pidfd: int | None, conn: Connection, slot: int) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.conn = conn
        self.slot = slot
        self.pending: dict[int, _Item] = {}  # sent, not answered, in the order sent
        self.chunks: deque[tuple[int, int]] = deque()  # (files, bytes) of each unanswered chunk, oldest first
        self.unanswered_bytes = 0
        self.heard = time.monotonic()  # last time it was sent work or answered


class _Pool:
    """Worker processes for one run; see the comment above.

    ``outcomes`` yields one FileOutcome per file, in the order of ``todo``, with at
    most ``window`` files between the one it read last and the one it yields next,
    so memory stays flat however many files there are.
    """

    def __init__(self, workers: int, chunk: int, opts: Options, root: str | None, user_dict: str | None) -> None:
        self.chunk = chunk
        self.budget = opts.file_timeout
        self.window = workers * 4 * chunk
        self._backlog: list[_Item] = []  # heap by sequence number: pulled or handed back, not sent
        self._alone: set[int] = set()  # files to send one per chunk (a worker died between files)
        self._done: dict[int, FileOutcome] = {}
        self._todo: Iterator[tuple[str, str, int, int]] = iter(())
        self._exhausted = False
        self._pulled = 0
        self._next = 0
        self._spawned: deque[tuple[int, int | None]] = deque()
        self._exits: dict[int, int] = {}
        self._free_slots = list(range(workers))
        self._slots = mmap.mmap(-1, workers * _SLOT_SIZE)  # shared with every process forked from here
        self.workers: list[_Worker] = []
        config = (opts.max_bytes, root, opts.follow_symlinks)
        self._ctl: socket.socket | None
        self._ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._spawner = multiprocessing.get_context("fork").Process(
            target=_spawner_main,
            args=(theirs, os.getpid(), user_dict, config, self._slots),
            name="indexer-spawner",
            daemon=True,
        )
        self._spawner.start()
        theirs.close()
        self._inbox = _INBOX_BYTES
        try:
            for _ in range(workers):
                self.workers.append(self._spawn())
        except BaseException:
            self.close()
            raise

    # -- the run's side ----------------------------------------------------------

    def outcomes(self, todo: Iterable[tuple[str, str, int, int]]) -> Iterator[FileOutcome]:
        self._todo = iter(todo)
        while True:
            while self._next in self._done:
                yield self._done.pop(self._next)
                self._next += 1
            self._feed()
            if not any(w.pending for w in self.workers):
                if not self._backlog and self._exhausted and not self._done:
                    return
                if not self._backlog:
                    continue  # the next one is done, or more can be pulled
                raise PoolError("no worker process is left to process files")
            self._service()

    def close(self) -> None:
        """Stop every worker and the spawner; safe to call twice."""
        for w in self.workers:
            self._kill(w)
            _close(w)
        self.workers = []
        if self._ctl is not None:
            try:
                self._ctl.send(_ASK.pack(b"Q", 0))
            except OSError:
                pass
            self._ctl.close()
            self._ctl = None
        for _pid, pidfd in self._spawned:
            if pidfd is not None:
                os.close(pidfd)
        self._spawned.clear()
        self._spawner.join(5)
        if self._spawner.exitcode is None:
            self._spawner.kill()
            self._spawner.join()

    # -- feeding -------------------------------------------------------------------

    def _pull(self) -> None:
        while not self._exhausted and self._pulled - self._next < self.window:
            try:
                path, rel, size, mtime = next(self._todo)
            except StopIteration:
                self._exhausted = True
                return
            heapq.heappush(self._backlog, (self._pulled, path, rel, size, mtime))
            self._pulled += 1

    def _take(self) -> list[_Item]:
        """The next chunk, smallest sequence numbers first; a file under suspicion alone."""
        items: list[_Item] = []
        while self._backlog and len(items) < self.chunk:
            if self._backlog[0][0] in self._alone:
                if not items:
                    items.append(heapq.heappop(self._backlog))
                break
            items.append(heapq.heappop(self._backlog))
        return items

    def _feed(self) -> None:
        """Send chunks to the workers with room in their inbox, least busy first."""
        while True:
            self._pull()
            if not self._backlog:
                return
            room = [w for w in self.workers if w.unanswered_bytes <= self._inbox - _CHUNK_BYTES]
            if not room:
                return
            w = min(room, key=lambda w: len(w.pending))
            items = self._take()
            payload = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
            while len(payload) > _CHUNK_BYTES and len(items) > 1:  # long paths: a smaller chunk
                for item in items[len(items) // 2 :]:
                    heapq.heappush(self._backlog, item)
                items = items[: len(items) // 2]
                payload = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
            try:
                w.conn.send_bytes(payload)
            except OSError:  # it died: these go back, and it is replaced
                for item in items:
                    heapq.heappush(self._backlog, item)
                self._retire(w, overdue=False)
                continue
            if not w.pending:
                w.heard = time.monotonic()
            for item in items:
                w.pending[item[0]] = item
            w.chunks.append((len(items), len(payload)))
            w.unanswered_bytes += len(payload)

    # -- listening -----------------------------------------------------------------

    def _service(self) -> None:
        """Wait for answers, a death or a deadline, and deal with what came."""
        timeout = None
        if self.budget > 0:
            now = time.monotonic()
            timeout = min((self._since(w) for w in self.workers if w.pending), default=now) + self.budget - now
            timeout = max(0.0, timeout)
        by_fd: dict[object, _Worker] = {}
        for w in self.workers:
            by_fd[w.conn] = w
            if w.pidfd is not None:
                by_fd[w.pidfd] = w
        objs: list = list(by_fd)
        if self._ctl is not None:
            objs.append(self._ctl)
        for obj in wait(objs, timeout):
            if obj is self._ctl:
                self._read_ctl()
                continue
            w = by_fd[obj]
            if w in self.workers and (not self._drain(w) or obj is w.pidfd):
                self._retire(w, overdue=False)  # gone (a pidfd is readable once its process has ended)
        if self.budget > 0:
            for w in list(self.workers):
                if w.pending and time.monotonic() - self._since(w) > self.budget:
                    if not self._drain(w):
                        self._retire(w, overdue=False)
                    elif w.pending and time.monotonic() - self._since(w) > self.budget:
                        self._retire(w, overdue=True)

    def _slot(self, w: _Worker) -> tuple[int, float]:
        """(file it is on or -1, since when), read until two reads agree: the worker
        writes the two fields one after the other."""
        offset = w.slot * _SLOT_SIZE
        while True:
            first = _SLOT.unpack_from(self._slots, offset)
            if _SLOT.unpack_from(self._slots, offset) == first:
                return first

    def _since(self, w: _Worker) -> float:
        """Since when the worker has been on its current file; between files, since
        it was last heard of (so a stuck worker is found too, but a busy indexer
        never makes one look stuck)."""
        seq, since = self._slot(w)
        return since if seq >= 0 else max(since, w.heard)

    def _drain(self, w: _Worker) -> bool:
        """Take every answer the worker has sent; False once it is gone."""
        try:
            while w.conn.poll():
                self._accept(w, w.conn.recv_bytes())
        except (EOFError, OSError):
            return False
        return True

    def _accept(self, w: _Worker, data: bytes) -> None:
        answers = pickle.loads(data)
        files, size = w.chunks.popleft()
        if len(answers) != files:  # pragma: no cover - a worker answers each chunk whole
            raise PoolError(f"worker {w.pid} answered {len(answers)} files of a chunk of {files}")
        w.unanswered_bytes -= size
        w.heard = time.monotonic()
        for seq, outcome in answers:
            del w.pending[seq]
            self._done[seq] = outcome
            self._alone.discard(seq)

    def _retire(self, w: _Worker, overdue: bool) -> None:
        """Stop a worker that overran its budget (or find it dead), reject the file
        it was on, hand the rest of its files back, and replace it."""
        if overdue:
            self._kill(w)
        end = time.monotonic() + 5
        while w.pending:  # answers sent before it died are good
            try:
                if not w.conn.poll(max(0.0, end - time.monotonic())):
                    break  # stuck where even SIGKILL waits (a hung disk): give up on it
                self._accept(w, w.conn.recv_bytes())
            except (EOFError, OSError):
                break
        self.workers.remove(w)
        seq, since = self._slot(w)  # it can no longer write: this is where it stopped
        self._free_slots.append(w.slot)
        culprit = None
        if seq in w.pending and (not overdue or time.monotonic() - since > self.budget):
            culprit = w.pending.pop(seq)
        elif not overdue and len(w.pending) == 1:  # died between files with one file: that one
            culprit = w.pending.popitem()[1]
        elif w.pending:  # it stopped between files: which one is to blame, the next tries say
            self._alone.update(w.pending)
        if culprit is not None:
            _seq, _path, rel, size, mtime = culprit
            if overdue:
                kind = "timeout"
                reason = f"took longer than {self.budget:g} s to process (--file-timeout); its worker was stopped"
            else:
                how = self._how_it_ended(w.pid)
                if self._ctl is None:  # the spawner died and took its workers: not this file's doing
                    raise PoolError("the process that starts workers is gone")
                kind = "crashed"
                reason = f"the worker processing it died ({how}); not indexed"
            self._done[culprit[0]] = FileOutcome(relpath=rel, size=size, mtime_ns=mtime, kind=kind, reason=reason)
            self._alone.discard(culprit[0])
            log.info("%s: %s", shown(rel), reason)
        for item in w.pending.values():
            heapq.heappush(self._backlog, item)
        w.pending.clear()
        _close(w)
        try:
            self.workers.append(self._spawn())
        except PoolError:
            if not self.workers:
                raise
            log.warning("could not replace a worker process; going on with %d", len(self.workers))

    def _kill(self, w: _Worker) -> None:
        try:
            if w.pidfd is not None:
                signal.pidfd_send_signal(w.pidfd, signal.SIGKILL)
            else:
                os.kill(w.pid, signal.SIGKILL)
        except OSError:  # already gone
            pass

    # -- the spawner ---------------------------------------------------------------

    def _spawn(self) -> _Worker:
        if self._ctl is None:
            raise PoolError("the process that starts workers is gone")
        slot = self._free_slots.pop()
        _SLOT.pack_into(self._slots, slot * _SLOT_SIZE, -1, time.monotonic())
        mine, theirs = socket.socketpair()
        try:
            socket.send_fds(self._ctl, [_ASK.pack(b"S", slot)], [theirs.fileno()])
        except OSError as exc:
            mine.close()
            self._free_slots.append(slot)
            raise PoolError(f"cannot start a worker process: {exc}") from None
        finally:
            theirs.close()
        # Unanswered chunks must fit in the socket however the kernel counts its buffer.
        self._inbox = min(_INBOX_BYTES, mine.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 3)
        end = time.monotonic() + 60
        while not self._spawned:
            left = end - time.monotonic()
            if self._ctl is None or left <= 0 or not wait([self._ctl], left):
                mine.close()
                raise PoolError("the process that starts workers did not answer")
            self._read_ctl()
        pid, pidfd = self._spawned.popleft()
        return _Worker(pid, pidfd, Connection(mine.detach()), slot)

    def _read_ctl(self) -> None:
        """Records from the spawner: a worker started, or a worker ended."""
        assert self._ctl is not None
        while True:
            try:
                msg, fds = _recv_record(self._ctl, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            if not msg:  # the spawner is gone
                self._ctl.close()
                self._ctl = None
                return
            what, pid, status = _REC.unpack(msg)
            if what == b"S":
                self._spawned.append((pid, fds[0] if fds else None))
            else:
                self._exits[pid] = status

    def _how_it_ended(self, pid: int) -> str:
        end = time.monotonic() + 2
        while pid not in self._exits and self._ctl is not None and wait([self._ctl], max(0.0, end - time.monotonic())):
            self._read_ctl()
        return _describe_exit(self._exits.pop(pid, None))


def _close(w: _Worker) -> None:
    w.conn.close()
    if w.pidfd is not None:
        os.close(w.pidfd)
        w.pidfd = None


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "it did not say why"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        if sig == signal.SIGKILL:
            return "killed by SIGKILL, as the out-of-memory killer does"
        return f"killed by signal {sig}, {name}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return f"wait status {status}"


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux 5.3+: signal by pid
        return None


def _recv_record(sock: socket.socket, flags: int = 0) -> tuple[bytes, list[int]]:
    """One record and the descriptors passed with it (``socket.recv_fds`` ignores
    its flags before Python 3.12, so not that)."""
    fds = array.array("i")
    msg, ancdata, _flags, _addr = sock.recvmsg(64, socket.CMSG_LEN(fds.itemsize), flags)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def _tell(ctl: socket.socket, record: bytes, fds: list[int] | None = None) -> bool:
    """Send the indexer a record; False when it is gone (then the spawner leaves quietly)."""
    try:
        socket.send_fds(ctl, [record], fds or [])
    except OSError:
        return False
    return True


def _spawner_main(ctl: socket.socket, parent: int, user_dict: str | None, config: tuple, slots: mmap.mmap) -> None:
    """The spawner: fork a worker per request, report each one's end, nothing else.

    Single-threaded and holding nothing of the run's engine, so what it forks is
    clean. Leaves by request, when the indexer's socket closes, or with the indexer
    (PR_SET_PDEATHSIG); takes its workers with it.
    """
    init_worker(user_dict, parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the indexer's to handle
    children: dict[int, int | None] = {}  # pid -> pidfd
    poller = select.poll()
    poller.register(ctl, select.POLLIN)
    try:
        while True:
            polling = any(fd is None for fd in children.values())
            events = dict(poller.poll(500 if polling else None))
            for pid, pidfd in list(children.items()):
                if pidfd is None or pidfd in events:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        del children[pid]
                        if pidfd is not None:
                            poller.unregister(pidfd)
                            os.close(pidfd)
                        if not _tell(ctl, _REC.pack(b"X", pid, status)):
                            return
            if ctl.fileno() not in events:
                continue
            msg, fds = _recv_record(ctl)
            if len(msg) != _ASK.size or msg[:1] != b"S" or not fds:  # b"Q", or the indexer is gone
                return
            slot = _ASK.unpack(msg)[1]
            me = os.getpid()
            pid = os.fork()
            if pid == 0:
                _worker_main(fds[0], ctl, children, me, config, slots, slot)
            os.close(fds[0])
            pidfd = _pidfd(pid)
            children[pid] = pidfd
            if pidfd is not None:
                poller.register(pidfd, select.POLLIN)
            if not _tell(ctl, _REC.pack(b"S", pid, 0), [pidfd] if pidfd is not None else []):
                return
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _worker_main(
    fd: int, ctl: socket.socket, siblings: dict[int, int | None], spawner: int, config: tuple, slots: mmap.mmap, slot: int
) -> None:
    """A worker: process each chunk it is sent, saying in its slot which file it
    is on, and answer the chunk whole. Runs in the child of a fork inside the
    spawner and never returns there."""
    code = 1
    try:
        ctl.close()
        for pidfd in siblings.values():
            if pidfd is not None:
                os.close(pidfd)
        init_worker(None, spawner)
        max_bytes, root, follow = config
        conn = Connection(fd)
        offset = slot * _SLOT_SIZE
        while True:
            try:
                data = conn.recv_bytes()
            except EOFError:
                break
            answers = []
            for seq, path, rel, size, mtime in pickle.loads(data):
                _SLOT.pack_into(slots, offset, seq, time.monotonic())
                answers.append((seq, process_file(path, rel, size, mtime, max_bytes, root, follow)))
                _SLOT.pack_into(slots, offset, -1, time.monotonic())
            conn.send_bytes(pickle.dumps(answers, pickle.HIGHEST_PROTOCOL))
        code = 0
    finally:
        os._exit(code)


def run(
    settings: Settings,
    source: Path,
    rebuild: bool = False,
    opts: Options | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: Engine | None = None,
) -> RunReport:
    """Index ``source`` into the configured engine; see the module docstring."""
    opts = opts or Options()
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"posts folder {source} does not exist")
    t0 = time.perf_counter()
    own_engine = engine is None
    engine = engine or open_engine(settings)
    report = RunReport(
        command="reindex" if rebuild else "index",
        source=str(source),
        engine=engine.name,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        dry_run=opts.dry_run,
    )
    live_manifest = manifest_path(settings.data_dir, engine.name, settings.index)
    if rebuild:
        mpath = manifest_path(settings.data_dir, engine.name, settings.index, suffix=f".rebuild-{os.getpid()}")
        if mpath.exists():
            mpath.unlink()
    else:
        mpath = live_manifest
    manifest = Manifest(mpath)
    writer = None
    pool: _Pool | None = None
    try:
        physical = engine.physical_index()
        if not rebuild and (physical is None or manifest.get_meta("physical") != physical):
            # The manifest describes another index (or none): trust nothing in it.
            if manifest.counts():
                log.warning("manifest does not match index %s; re-checking every file", physical)
            manifest.reset()

        todo_count = _plan(manifest, source, report, opts)
        gone = manifest.unseen() if opts.delete else []
        log.info("scanned %s: %d post files", source, report.read)
        log.info("%d files to process, %d unchanged, %d gone", todo_count, report.unchanged, len(gone))
        if opts.dry_run:
            report.would_delete = [e.path for e in gone]
            report.indexed = todo_count
            return report

        load_user_dict(settings.user_dict)  # once, here: the spawner and its workers inherit it
        if todo_count:  # before the writer exists: see the worker processes section
            workers = max(1, min(opts.workers or os.cpu_count() or 1, todo_count))
            chunk = max(1, min(64, todo_count // (workers * 8)))
            user_dict = str(settings.user_dict) if settings.user_dict else None
            pool = _Pool(workers, chunk, opts, _root_of(source), user_dict)
        writer = engine.writer(rebuild=rebuild)
        if not rebuild:  # before any write: a crash must not make the next run distrust this manifest
            manifest.set_meta("physical", engine.physical_index() or "")
        batch: list[FileOutcome] = []
        pending_ids: dict[str, str] = {}
        pending_content: dict[str, str] = {}
        done = 0

        # Written but not yet committed: only manifest entries (no article text), so
        # a long commit interval costs little memory.
        uncommitted: list[Entry] = []
        last_commit = time.monotonic()

        def flush(final: bool = False) -> None:
            """Send the batch to the engine; commit when enough has piled up.

            Commits are what make writes durable and visible, and they are not
            free (a tantivy segment, an Elasticsearch refresh): one every
            ``commit_docs`` articles or ``commit_seconds`` seconds, not per batch.
            Crash safety does not depend on it: every id is in the manifest as
            "pending" before it reaches the engine, and only becomes "indexed"
            after the commit that holds it.
            """
            nonlocal batch, last_commit
            if batch:
                arts = [o.article for o in batch if o.article is not None]
                # Write-ahead: the manifest learns which ids are about to land before
                # the engine does, so a crash can never leave an id it does not know.
                manifest.record(
                    Entry(o.relpath, o.size, o.mtime_ns, "", o.article.article.id, None, "pending", None, None)
                    for o in batch
                    if o.article
                )
                refused = dict(writer.upsert(arts)) if arts else {}
                for o in batch:
                    a = o.article
                    if a is not None and a.article.id in refused:
                        o.kind, o.reason, o.article = "engine", refused[a.article.id], None
                        report.rejections.append(Rejection(o.relpath, o.kind, o.reason))
                        report.indexed -= 1
                    if o.article is not None:
                        art = o.article.article
                        uncommitted.append(
                            Entry(
                                o.relpath,
                                o.size,
                                o.mtime_ns,
                                o.file_hash,
                                art.id,
                                art.content_hash,
                                "indexed",
                                None,
                                None,
                                _dump_warnings(o.warnings),
                            )
                        )
                    else:
                        uncommitted.append(
                            Entry(o.relpath, o.size, o.mtime_ns, o.file_hash, None, None, "rejected", o.kind, o.reason)
                        )
                if refused:
                    log.info("the engine refused %d of %d articles", len(refused), len(arts))
                batch = []
            due = len(uncommitted) >= opts.commit_docs or time.monotonic() - last_commit >= opts.commit_seconds
            if uncommitted and (final or due):
                writer.commit()
                manifest.record(uncommitted)
                log.info("committed %d files", len(uncommitted))
                uncommitted.clear()
                pending_ids.clear()
                pending_content.clear()
                last_commit = time.monotonic()

        outcomes = pool.outcomes(manifest.iter_todo()) if pool is not None else iter(())
        for o in outcomes:
            done += 1
            if progress:
                progress(done, todo_count)
            prior = manifest.get(o.relpath)
            if o.article is not None:
                a = o.article.article
                if prior and prior.status == "indexed" and prior.file_hash == o.file_hash and prior.id == a.id:
                    report.unchanged += 1
                    report.warnings.extend(FileWarning(o.relpath, m) for m in o.warnings)
                    manifest.record(
                        [
                            Entry(
                                o.relpath,
                                o.size,
                                o.mtime_ns,
                                o.file_hash,
                                a.id,
                                a.content_hash,
                                "indexed",
                                None,
                                None,
                                _dump_warnings(o.warnings),
                            )
                        ]
                    )
                    continue
                dup = pending_content.get(a.content_hash) or _other(manifest.owner_of_content(a.content_hash), o.relpath)
                if dup:
                    o.article, o.kind, o.reason = (
                        None,
                        "duplicate",
                        f"duplicate of {dup} (same title and text); not indexed twice",
                    )
                else:
                    same_id = pending_ids.get(a.id) or _other_path(manifest.owner_of_id(a.id), o.relpath)
                    if same_id:
                        o.article, o.kind, o.reason = (
                            None,
                            "duplicate-id",
                            f"same id {a.id!r} as {same_id}: rename one of the files",
                        )
            if o.article is None:
                report.rejections.append(Rejection(o.relpath, o.kind, o.reason))
                if prior and prior.status in ("indexed", "pending") and prior.id:
                    writer.delete([prior.id])  # it was good before; a broken edit removes it
            else:
                a = o.article.article
                pending_ids[a.id] = o.relpath
                pending_content[a.content_hash] = o.relpath
                if prior and prior.status in ("indexed", "pending") and prior.id and prior.id != a.id:
                    writer.delete([prior.id])
                report.indexed += 1
                report.warnings.extend(FileWarning(o.relpath, m) for m in o.warnings)
            batch.append(o)
            if len(batch) >= opts.batch_size:
                flush()
        flush(final=True)

        if gone:
            live = ("indexed", "pending")  # a pending id may have reached the engine before a crash
            writer.delete(e.id for e in gone if e.id and e.status in live)
            writer.commit()
            manifest.forget(e.path for e in gone)
            report.deleted = sum(1 for e in gone if e.status in live)

        if rebuild:
            writer.publish(keep_old=opts.keep_old)
            log.info("rebuilt index is live: %s", engine.physical_index())
        else:
            writer.close()
        writer = None
        report.index = engine.physical_index()
        manifest.set_meta("physical", report.index or "")
    except BaseException:
        if writer is not None and rebuild:
            writer.abort()
        elif writer is not None:
            try:
                writer.close()  # what was committed stays; background settings are restored
            except Exception as exc:  # noqa: BLE001 - the original error is the one to report
                log.warning("could not close the writer cleanly: %s", exc)
        raise
    finally:
        if pool is not None:
            pool.close()
        manifest.close()
        if rebuild and writer is None and mpath.exists() and not opts.dry_run:
            replace_manifest(mpath, live_manifest)
        elif rebuild and mpath.exists():
            mpath.unlink(missing_ok=True)

    report.rejected = len(report.rejections)
    report.seconds = time.perf_counter() - t0
    report.documents = engine.count()
    save_report(settings, report)
    if own_engine:
        engine.close()
    return report


def _other(owner: tuple[str, str] | None, relpath: str) -> str | None:
    return owner[0] if owner and owner[0] != relpath else None


def _other_path(owner: str | None, relpath: str) -> str | None:
    return owner if owner and owner != relpath else None


def save_report(settings: Settings, report: RunReport) -> Path:
    """Write the run report and the rejected-files ledger, atomically."""
    folder = Path(settings.data_dir) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{report.command}.json"
    _atomic_write(path, json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    _atomic_write(folder / "last-run.json", json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    ledger = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in report.rejections)
    _atomic_write(Path(settings.data_dir) / "rejected.jsonl", ledger)
    return path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def last_report(settings: Settings) -> dict | None:
    path = Path(settings.data_dir) / "reports" / "last-run.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def status(settings: Settings, engine: Engine | None = None) -> dict:
    engine = engine or open_engine(settings)
    health = engine.health()
    mpath = manifest_path(settings.data_dir, engine.name, settings.index)
    counts: dict[str, int] = {}
    if mpath.exists():
        m = Manifest(mpath)
        counts = m.counts()
        m.close()
    return {
        "engine": engine.name,
        "alias": settings.index,
        "index": engine.physical_index(),
        "healthy": bool(health.get("ok")),
        "health": health,
        "documents": engine.count() if health.get("ok") else None,
        "files_indexed": counts.get("indexed", 0),
        "files_rejected": counts.get("rejected", 0),
        "last_run": last_report(settings),
        "ledger": str(Path(settings.data_dir) / "rejected.jsonl"),
    }


def _root_of(source: Path) -> str | None:
    """The resolved posts folder that files must stay inside (None: one file was named)."""
    return os.path.realpath(source) if source.is_dir() else None


def _valid_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name, kept as lone surrogates
        return False
    return True


def _dump_warnings(warnings: Iterable[str]) -> str | None:
    items = list(warnings)
    return json.dumps(items, ensure_ascii=False) if items else None


def _load_warnings(stored: str | None) -> list[str]:
    if not stored:
        return []
    try:
        items = json.loads(stored)
    except ValueError:
        return []
    return [str(m) for m in items] if isinstance(items, list) else []


# What a terminal would act on instead of showing: C0 and C1 controls (newline,
# carriage return, ESC), DEL, the bidirectional overrides, embeddings and isolates
# that reorder what follows, and the Unicode line and paragraph separators.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _SHORT:
        return _SHORT[c]
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def shown(text: str) -> str:
    """``text`` made safe for one line of a terminal: controls and bidi marks escaped
    (``\\n``, ``\\x1b``, ``\\u202e``), so no file name can forge a line or recolour
    the screen. Names that are not UTF-8 come out with ``\\udcxx`` escapes. For the
    screen only: the ledger and the JSON keep names exactly."""
    text = _UNSHOWABLE.sub(_escape, text)
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def iter_rejections(items: Iterable[Rejection]) -> Iterator[str]:
    """One screen line per rejected file."""
    for r in items:
        yield f"REJECTED {shown(r.path)}: {shown(r.reason)}"


def iter_warnings(items: Iterable[FileWarning]) -> Iterator[str]:
    """One screen line per warning."""
    for w in items:
        yield f"WARNING {shown(w.path)}: {shown(w.message)}"
