"""The indexer's worker processes: each post file processed within a time budget.

concurrent.futures cannot stop one worker, so this is a small pool of our own; the
comment below says how it works and why.
"""

from __future__ import annotations

import array
import heapq
import logging
import mmap
import multiprocessing
import os
import pickle
import select
import signal
import socket
import struct
import time
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path

from searchcore.analysis import load_user_dict
from searchcore.boilerplate import Model
from searchcore.indexing import FileOutcome, process_file

from .screen import shown

log = logging.getLogger("indexer")


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


class Pool:
    """Worker processes for one run; see the comment above.

    ``outcomes`` yields one FileOutcome per file, in the order of ``todo``, with at
    most ``window`` files between the one it read last and the one it yields next,
    so memory stays flat however many files there are.
    """

    def __init__(
        self,
        workers: int,
        chunk: int,
        budget: float,
        max_bytes: int,
        root: str | None,
        follow_symlinks: bool,
        user_dict: str | None,
        model: Model | None = None,
        analyse: bool = True,
    ) -> None:
        """``model``: the run's learned boilerplate, applied by every worker
        (forked with it, so it is sent once, not with every chunk); without
        ``analyse``, workers parse but do not analyse (learning needs no tokens)."""
        self.chunk = chunk
        self.budget = budget
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
        config = (max_bytes, root, follow_symlinks, model, analyse)
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
        max_bytes, root, follow, model, analyse = config
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
                answers.append((seq, process_file(path, rel, size, mtime, max_bytes, root, follow, model, analyse)))
                _SLOT.pack_into(slots, offset, -1, time.monotonic())
            conn.send_bytes(pickle.dumps(answers, pickle.HIGHEST_PROTOCOL))
        code = 0
    finally:
        os._exit(code)


def init_worker(user_dict: str | None, parent: int | None = None) -> None:
    """Worker start-up: die with the process that started it (a SIGKILLed run leaves
    no orphans), and load the operator's dictionary once.

    ``parent`` is the pid the worker expects as its parent: if that process is
    already gone when the death signal is armed, nobody would ever send it, so the
    worker exits at once instead of living on as an orphan.
    """
    _die_with_parent()
    if parent is not None and os.getppid() != parent:
        os._exit(0)
    load_user_dict(Path(user_dict) if user_dict else None)


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: orphans exit when their connection closes
        pass
