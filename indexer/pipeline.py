"""The indexing run: scan, skip what is unchanged, process in parallel, write in
batches, delete what disappeared, and report every rejected file with its reason.

Files are always processed in worker processes of our own pool (``indexer.pool``), never
in the indexer itself: each file has a time budget, and a worker that overruns it
or dies is killed and replaced, costing the run that one file.

One run is an ``IndexRun`` in named steps (plan, start, process, write, finish);
``run`` drives them and ``indexer.cli`` only wraps ``run``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from searchcore.analysis import load_user_dict
from searchcore.boilerplate import Model, Sample
from searchcore.boilerplate import learn as learn_boilerplate
from searchcore.config import Settings
from searchcore.engines import Engine, open_engine
from searchcore.engines.base import IndexWriter
from searchcore.files import DEFAULT_MAX_BYTES, is_inside
from searchcore.indexing import FileOutcome
from searchcore.posts import POST_SUFFIXES

from .manifest import Entry, Manifest, manifest_path, replace_manifest
from .pool import Pool
from .screen import shown

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
    boilerplate: str = ""  # the hash of the boilerplate model the run applied ("": none)
    learned_from: int = 0  # posts the run learned it from (0: it used the stored model)

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


# Files read to learn each outlet's boilerplate before a run (searchcore.boilerplate):
# a stride sample of the files to process, so a million posts cost 20,000 reads.
LEARN_MAX_FILES = 20_000


def model_path(data_dir: Path, engine: str, alias: str, suffix: str = "") -> Path:
    """Where the boilerplate model an index was built with is kept: next to its manifest."""
    return Path(data_dir) / "state" / f"{engine}-{alias}{suffix}.boilerplate.json"


def load_model(path: Path) -> Model | None:
    """The stored model, or None (none yet, unreadable, or of another version: the
    next ``reindex`` learns one)."""
    try:
        return Model.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("boilerplate model %s unusable (%s): reindex to learn it again", path, exc)
        return None


# A file that overran its time budget or killed its worker while the boilerplate
# was learned is rejected as it was then, not read a second time: a hostile file
# costs a run its budget once.
LEARN_FINAL_KINDS = frozenset({"timeout", "crashed"})

# Rejections that depend on the options or on the moment rather than on the file
# alone: an unchanged file rejected for one of these is looked at again on the
# next run (a larger --max-bytes or --file-timeout, --follow-symlinks, a machine
# less loaded, permissions fixed without touching the file).
RECHECK_KINDS = frozenset({"timeout", "crashed", "too-large", "symlink-outside", "unreadable"})

# Manifest states whose id may be in the engine: a pending id may have reached it
# before a crash.
LIVE = ("indexed", "pending")


@dataclass(frozen=True, slots=True)
class Decision:
    """What becomes of one processed file; see ``decide``."""

    action: str  # "unchanged" (the indexed file again: nothing to write), "index" or "reject"
    kind: str = ""  # why it is rejected ...
    reason: str = ""  # ... in the ledger's words
    drop: str | None = None  # an id of this file's earlier article, for the engine to delete


def decide(
    o: FileOutcome,
    prior: Entry | None,
    content_owner: Callable[[str], str | None],
    id_owner: Callable[[str], str | None],
) -> Decision:
    """What to do with a processed file, given its manifest entry (``prior``) and
    who already holds its content and its id (``content_owner``, ``id_owner``: a
    path, in this run or in the index, or None).

    Pure: it changes nothing, and calls the lookups only when it needs them (an
    unchanged or rejected file costs no query); the run acts on the answer.
    """
    was = prior.id if prior and prior.status in LIVE and prior.id else None
    if o.article is None:  # it was good before: a broken edit removes it
        return Decision("reject", o.kind, o.reason, drop=was)
    a = o.article.article
    if prior and prior.status == "indexed" and prior.file_hash == o.file_hash and prior.id == a.id:
        return Decision("unchanged")  # touched, not changed (or only re-checked)
    dup = _other_path(content_owner(a.content_hash), o.relpath)
    if dup:
        return Decision("reject", "duplicate", f"duplicate of {dup} (same title and text); not indexed twice", drop=was)
    same_id = _other_path(id_owner(a.id), o.relpath)
    if same_id:
        return Decision("reject", "duplicate-id", f"same id {a.id!r} as {same_id}: rename one of the files", drop=was)
    return Decision("index", drop=was if was != a.id else None)


class IndexRun:
    """One indexing run, in steps that can be driven (and tested) one at a time:

    - ``plan``: scan the folder against the manifest; what is unchanged, to process, gone.
    - ``start``: the worker pool, then the engine's writer (in that order: the pool
      forks its workers, and must do so before the writer holds threads and locks).
    - ``process``: every planned file through the pool; ``admit`` turns each outcome
      into a write, a rejection or nothing (``decide``), and batches go to ``write``.
    - ``write``: a batch to the engine, write-ahead in the manifest, and the commit policy.
    - ``finish``: deletions, publish (rebuild) or close, the report.

    ``run`` drives them. Used as a context manager, the run always releases the
    pool, the writer (aborting a rebuild that did not finish), the manifest and an
    engine it opened itself.
    """

    def __init__(
        self,
        settings: Settings,
        source: Path,
        rebuild: bool = False,
        opts: Options | None = None,
        progress: Callable[[int, int], None] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.opts = opts or Options()
        self.source = Path(source)
        if not self.source.exists():
            raise FileNotFoundError(f"posts folder {self.source} does not exist")
        self.rebuild = rebuild
        self.progress = progress
        self.t0 = time.perf_counter()
        self.own_engine = engine is None
        self.engine = engine or open_engine(settings)
        self.report = RunReport(
            command="reindex" if rebuild else "index",
            source=str(self.source),
            engine=self.engine.name,
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            dry_run=self.opts.dry_run,
        )
        self.live_manifest = manifest_path(settings.data_dir, self.engine.name, settings.index)
        if rebuild:  # a manifest of its own, the live one until the new index is
            self.mpath = manifest_path(settings.data_dir, self.engine.name, settings.index, suffix=f".rebuild-{os.getpid()}")
            self.mpath.unlink(missing_ok=True)
        else:
            self.mpath = self.live_manifest
        self.manifest = Manifest(self.mpath)
        self.live_model = model_path(settings.data_dir, self.engine.name, settings.index)
        self.model_file = self.live_model if not rebuild else self.mpath.with_name(self.mpath.stem + ".boilerplate.json")
        self.model: Model | None = None
        self.failed_early: dict[str, FileOutcome] = {}  # see LEARN_FINAL_KINDS
        self.pool: Pool | None = None
        self.writer: IndexWriter | None = None
        self.live = False  # the run's writes are live (closed or published)
        self.todo_count = 0
        self.gone: list[Entry] = []
        self.done = 0
        # Written but not yet committed: only manifest entries (no article text), so
        # a long commit interval costs little memory; and the ids and contents they
        # claim, which the manifest will only know after the commit.
        self.uncommitted: list[Entry] = []
        self.pending_ids: dict[str, str] = {}
        self.pending_content: dict[str, str] = {}
        self.last_commit = time.monotonic()

    def __enter__(self) -> IndexRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
        if self.own_engine:
            self.engine.close()

    # -- plan ------------------------------------------------------------------------

    def plan(self, page: int = 500) -> int:
        """Scan the folder against the manifest: count what is unchanged, note every
        path seen and every file to process in the manifest's temporary tables, and
        list the entries whose files are gone. Returns how many files to process.

        Files are stat-ed and looked up a page at a time, so a million posts cost a
        million rows on disk, not a million objects in memory.
        """
        physical = self.engine.physical_index()
        if not self.rebuild and (physical is None or self.manifest.get_meta("physical") != physical):
            # The manifest describes another index (or none): trust nothing in it.
            if self.manifest.counts():
                log.warning("manifest does not match index %s; re-checking every file", physical)
            self.manifest.reset()
        self.manifest.begin_scan()
        root = None if self.opts.follow_symlinks else _root_of(self.source)
        for items in _pages(scan(self.source), page):
            self.report.read += len(items)
            self._plan_page(items, root)
        self.todo_count = self.manifest.todo_count()
        self.gone = self.manifest.unseen() if self.opts.delete else []
        log.info("scanned %s: %d post files", self.source, self.report.read)
        log.info("%d files to process, %d unchanged, %d gone", self.todo_count, self.report.unchanged, len(self.gone))
        if self.opts.dry_run:
            self.report.would_delete = [e.path for e in self.gone]
            self.report.indexed = self.todo_count
        return self.todo_count

    def _plan_page(self, items: list[tuple[str, str]], root: str | None) -> None:
        named = []
        for path, rel in items:
            if _valid_name(rel):
                named.append((path, rel))
            else:  # the manifest, the engines and the report all need text
                shown_rel = os.fsencode(rel).decode("utf-8", "backslashreplace")
                self.report.rejections.append(
                    Rejection(shown_rel, "bad-name", "the file name is not valid UTF-8: rename the file")
                )
        known = self.manifest.lookup([rel for _, rel in named])
        todo: list[tuple[str, str, int, int]] = []
        for path, rel in named:
            try:
                st, link = _stat(path)
            except OSError as exc:
                self.report.rejections.append(Rejection(rel, "unreadable", f"cannot stat file: {exc.strerror or exc}"))
                continue
            e = known.get(rel)
            # An unchanged link to a file outside the folder is processed again unless
            # --follow-symlinks: it may have been indexed by a run that allowed it.
            if e and _current(e, st) and not (link and root is not None and not is_inside(os.path.realpath(path), root)):
                self._keep(rel, e)
            else:
                todo.append((path, rel, st.st_size, st.st_mtime_ns))
        self.manifest.saw([rel for _, rel in named], todo)

    def _keep(self, rel: str, e: Entry) -> None:
        """An unchanged file: reported as it was last time."""
        self.report.unchanged += 1
        if e.status == "rejected":
            self.report.rejections.append(Rejection(rel, e.kind or "rejected", e.reason or ""))
        else:
            self.report.warnings.extend(FileWarning(rel, m) for m in _load_warnings(e.warnings))

    # -- learn -----------------------------------------------------------------------

    def learn(self) -> Model | None:
        """The outlets' boilerplate this run applies (``searchcore.boilerplate``).

        A rebuild learns it afresh; so does the first run into an empty index. Any
        other run applies the model the index was built with, so old and new
        articles are cleaned alike (a new outlet is learned by the next
        ``reindex``; ``status`` says so). Learning reads a bounded stride sample of
        the files to process through worker processes, with the same limits and
        time budget as indexing, and keeps a few line keys per post.
        """
        load_user_dict(self.settings.user_dict)
        if not self.rebuild:
            self.model = load_model(self.live_model)
            if self.model is not None or self.manifest.counts().get("indexed"):
                self.report.boilerplate = self.model.hash if self.model else ""
                return self.model
        if not self.todo_count:
            return None
        stride = max(1, -(-self.todo_count // LEARN_MAX_FILES))
        pool = self._pool(min(self.todo_count, LEARN_MAX_FILES), None, analyse=False)
        try:
            todo = itertools.islice(self.manifest.iter_todo(), 0, None, stride)
            samples = []
            for o in pool.outcomes(todo):
                if o.article is not None:
                    samples.append(Sample.of(o.article.article))
                elif o.kind in LEARN_FINAL_KINDS:
                    self.failed_early[o.relpath] = o
            self.report.learned_from = len(samples)
            self.model = learn_boilerplate(samples)
        finally:
            pool.close()
        self.model_file.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.model_file, self.model.to_json())
        self.report.boilerplate = self.model.hash
        log.info("learned boilerplate %s from %d posts", self.model.hash, self.report.learned_from)
        return self.model

    # -- start -----------------------------------------------------------------------

    def _pool(self, files: int, model: Model | None, analyse: bool = True) -> Pool:
        workers = max(1, min(self.opts.workers or os.cpu_count() or 1, files))
        chunk = max(1, min(64, files // (workers * 8)))
        user_dict = str(self.settings.user_dict) if self.settings.user_dict else None
        o = self.opts
        root = _root_of(self.source)
        return Pool(workers, chunk, o.file_timeout, o.max_bytes, root, o.follow_symlinks, user_dict, model, analyse)

    def start(self) -> None:
        """Start the worker pool (if there is work) and then open the writer."""
        load_user_dict(self.settings.user_dict)  # once, here: the spawner and its workers inherit it
        if self.todo_count:  # before the writer exists: see the worker processes section
            self.pool = self._pool(self.todo_count, self.model)
        self.writer = self.engine.writer(rebuild=self.rebuild)
        if not self.rebuild:  # before any write: a crash must not make the next run distrust this manifest
            self.manifest.set_meta("physical", self.engine.physical_index() or "")

    # -- process ---------------------------------------------------------------------

    def process(self) -> None:
        """Start, then process every planned file in the pool and write the results
        in batches of ``batch_size``; the last write commits."""
        self.start()
        todo = (t for t in self.manifest.iter_todo() if t[1] not in self.failed_early)
        outcomes = self.pool.outcomes(todo) if self.pool is not None else iter(())
        batch: list[FileOutcome] = []
        for o in itertools.chain(self.failed_early.values(), outcomes):
            self.done += 1
            if self.progress:
                self.progress(self.done, self.todo_count)
            item = self.admit(o)
            if item is not None:
                batch.append(item)
                if len(batch) >= self.opts.batch_size:
                    self.write(batch)
                    batch = []
        self.write(batch, final=True)

    def admit(self, o: FileOutcome) -> FileOutcome | None:
        """Act on ``decide``'s answer for one outcome: the outcome to write (a
        rejected copy of it if it is a duplicate), or None if there is nothing to
        write. Deletes the file's earlier article where the decision says so."""
        prior = self.manifest.get(o.relpath)
        d = decide(o, prior, self._content_owner, self._id_owner)
        if d.action == "unchanged":
            self.report.unchanged += 1
            self.report.warnings.extend(FileWarning(o.relpath, m) for m in o.warnings)
            self.manifest.record([_entry(o)])
            return None
        if d.drop:
            self.writer.delete([d.drop])
        if d.action == "reject":
            if o.article is not None:
                o = replace(o, article=None, kind=d.kind, reason=d.reason)
            self.report.rejections.append(Rejection(o.relpath, o.kind, o.reason))
            return o
        a = o.article.article
        self.pending_ids[a.id] = o.relpath
        self.pending_content[a.content_hash] = o.relpath
        self.report.indexed += 1
        self.report.warnings.extend(FileWarning(o.relpath, m) for m in o.warnings)
        return o

    def _content_owner(self, content_hash: str) -> str | None:
        if content_hash in self.pending_content:
            return self.pending_content[content_hash]
        owner = self.manifest.owner_of_content(content_hash)
        return owner[0] if owner else None

    def _id_owner(self, doc_id: str) -> str | None:
        return self.pending_ids.get(doc_id) or self.manifest.owner_of_id(doc_id)

    # -- write -----------------------------------------------------------------------

    def write(self, batch: list[FileOutcome], final: bool = False) -> None:
        """Send a batch to the engine; commit when enough has piled up (or ``final``).

        Commits are what make writes durable and visible, and they are not free (a
        tantivy segment, an Elasticsearch refresh): one every ``commit_docs``
        articles or ``commit_seconds`` seconds, not per batch. Crash safety does not
        depend on it: every id is in the manifest as "pending" before it reaches
        the engine, and only becomes "indexed" after the commit that holds it.
        """
        if batch:
            self._send(batch)
        if self.uncommitted and (final or self.commit_due()):
            self.commit()

    def _send(self, batch: list[FileOutcome]) -> None:
        arts = [o.article for o in batch if o.article is not None]
        # Write-ahead: the manifest learns which ids are about to land before the
        # engine does, so a crash can never leave an id it does not know.
        self.manifest.record(
            Entry(o.relpath, o.size, o.mtime_ns, "", o.article.article.id, None, "pending", None, None)
            for o in batch
            if o.article
        )
        refused = dict(self.writer.upsert(arts)) if arts else {}
        for o in batch:
            if o.article is not None and o.article.article.id in refused:
                o = replace(o, article=None, kind="engine", reason=refused[o.article.article.id])
                self.report.rejections.append(Rejection(o.relpath, o.kind, o.reason))
                self.report.indexed -= 1
            self.uncommitted.append(_entry(o))
        if refused:
            log.info("the engine refused %d of %d articles", len(refused), len(arts))

    def commit_due(self) -> bool:
        """The commit policy: ``commit_docs`` files written or ``commit_seconds`` gone by."""
        return len(self.uncommitted) >= self.opts.commit_docs or time.monotonic() - self.last_commit >= self.opts.commit_seconds

    def commit(self) -> None:
        """Commit the engine, then tell the manifest: pending entries become final."""
        self.writer.commit()
        self.manifest.record(self.uncommitted)
        log.info("committed %d files", len(self.uncommitted))
        self.uncommitted.clear()
        self.pending_ids.clear()
        self.pending_content.clear()
        self.last_commit = time.monotonic()

    # -- finish ----------------------------------------------------------------------

    def finish(self) -> RunReport:
        """Delete what disappeared from the folder, make the writes live (publish a
        rebuild, close the writer otherwise), release the pool and the manifest, and
        save the report."""
        if self.gone:
            self.writer.delete(e.id for e in self.gone if e.id and e.status in LIVE)
            self.writer.commit()
            self.manifest.forget(e.path for e in self.gone)
            self.report.deleted = sum(1 for e in self.gone if e.status in LIVE)
        if self.rebuild:
            self.writer.publish(keep_old=self.opts.keep_old)
            log.info("rebuilt index is live: %s", self.engine.physical_index())
        else:
            self.writer.close()
        self.writer = None
        self.live = True
        self.report.index = self.engine.physical_index()
        self.manifest.set_meta("physical", self.report.index or "")
        self.manifest.set_meta("boilerplate", self.report.boilerplate)
        self.close()
        self.report.rejected = len(self.report.rejections)
        self.report.seconds = time.perf_counter() - self.t0
        self.report.documents = self.engine.count()
        save_report(self.settings, self.report)
        return self.report

    def close(self) -> None:
        """Release what the run holds; safe to call twice. A writer still open means
        the run did not finish: a rebuild is aborted, an update keeps what it
        committed. A rebuilt manifest replaces the live one only once the new index
        is live."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            if self.rebuild:
                writer.abort()
            else:
                try:
                    writer.close()  # what was committed stays; background settings are restored
                except Exception as exc:  # noqa: BLE001 - the original error is the one to report
                    log.warning("could not close the writer cleanly: %s", exc)
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.manifest.close()
        if self.rebuild and self.mpath.exists():
            if self.live:
                replace_manifest(self.mpath, self.live_manifest)
            else:
                self.mpath.unlink(missing_ok=True)
        if self.rebuild and self.model_file.exists():  # the model goes live with its index
            if self.live:
                os.replace(self.model_file, self.live_model)
            else:
                self.model_file.unlink(missing_ok=True)


def run(
    settings: Settings,
    source: Path,
    rebuild: bool = False,
    opts: Options | None = None,
    progress: Callable[[int, int], None] | None = None,
    engine: Engine | None = None,
) -> RunReport:
    """Index ``source`` into the configured engine; see the module docstring and ``IndexRun``."""
    with IndexRun(settings, source, rebuild, opts, progress, engine) as job:
        job.plan()
        if not job.opts.dry_run:
            job.learn()
            job.process()
            job.finish()
    return job.report


def _pages(items: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    page: list[tuple[str, str]] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _stat(path: str) -> tuple[os.stat_result, bool]:
    """The file's stat (through a link) and whether ``path`` is a link; lstat is as
    cheap as stat and says which files are links."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return os.stat(path), True
    return st, False


def _current(e: Entry, st: os.stat_result) -> bool:
    """The manifest's entry still describes this file: nothing to process again."""
    return (
        e.status != "pending"
        and e.size == st.st_size
        and e.mtime_ns == st.st_mtime_ns
        and e.kind != "duplicate"
        and not (e.status == "rejected" and e.kind in RECHECK_KINDS)
    )


def _entry(o: FileOutcome) -> Entry:
    """The manifest entry of a written outcome, as it stands once committed."""
    if o.article is None:
        return Entry(o.relpath, o.size, o.mtime_ns, o.file_hash, None, None, "rejected", o.kind, o.reason)
    art = o.article.article
    return Entry(
        o.relpath, o.size, o.mtime_ns, o.file_hash, art.id, art.content_hash, "indexed", None, None, _dump_warnings(o.warnings)
    )


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
    built_with = None
    if mpath.exists():
        m = Manifest(mpath)
        counts = m.counts()
        built_with = m.get_meta("boilerplate")
        m.close()
    model = load_model(model_path(settings.data_dir, engine.name, settings.index))
    return {
        "engine": engine.name,
        "alias": settings.index,
        "index": engine.physical_index(),
        "healthy": bool(health.get("ok")),
        "health": health,
        "layout": engine.layout() if health.get("ok") else {},
        "documents": engine.count() if health.get("ok") else None,
        "files_indexed": counts.get("indexed", 0),
        "files_rejected": counts.get("rejected", 0),
        "last_run": last_report(settings),
        "ledger": str(Path(settings.data_dir) / "rejected.jsonl"),
        "boilerplate": boilerplate_status(model, built_with),
    }


def boilerplate_status(model: Model | None, built_with: str | None) -> dict:
    """What was learned per outlet, and whether the index shows it: an index built
    with another model (or none) cleans its articles otherwise until ``reindex``."""
    current = model.hash if model else ""
    outlets = {}
    for name, o in sorted((model.outlets if model else {}).items(), key=lambda kv: -kv[1].posts):
        outlets[name] = {
            "posts": o.posts,
            "prefixes": list(o.prefixes),
            "suffixes": list(o.suffixes),
            "headline_first_line": o.headline,
            "lines": list(o.lines),
            "related_blocks": list(o.tails),
        }
    return {
        "model": current or None,
        "index_built_with": built_with or None,
        "reindex_needed": (built_with or "") != current,
        "share": model.share if model else None,
        "min_posts": model.min_posts if model else None,
        "outlets": outlets,
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
def iter_rejections(items: Iterable[Rejection]) -> Iterator[str]:
    """One screen line per rejected file."""
    for r in items:
        yield f"REJECTED {shown(r.path)}: {shown(r.reason)}"


def iter_warnings(items: Iterable[FileWarning]) -> Iterator[str]:
    """One screen line per warning."""
    for w in items:
        yield f"WARNING {shown(w.path)}: {shown(w.message)}"
