"""The indexing run: scan, skip what is unchanged, process in parallel, write in
batches, delete what disappeared, and report every rejected file with its reason.

Files are always processed in worker processes of our own pool (``indexer.pool``), never
in the indexer itself: each file has a time budget, and a worker that overruns it
or dies is killed and replaced, costing the run that one file.

Plain functions over a Settings object; ``indexer.cli`` only wraps them.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from searchcore.analysis import load_user_dict
from searchcore.config import Settings
from searchcore.engines import Engine, open_engine
from searchcore.files import is_inside
from searchcore.indexing import FileOutcome
from searchcore.posts import DEFAULT_MAX_BYTES, POST_SUFFIXES

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
    pool: Pool | None = None
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
            pool = Pool(workers, chunk, opts.file_timeout, opts.max_bytes, _root_of(source), opts.follow_symlinks, user_dict)
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
def iter_rejections(items: Iterable[Rejection]) -> Iterator[str]:
    """One screen line per rejected file."""
    for r in items:
        yield f"REJECTED {shown(r.path)}: {shown(r.reason)}"


def iter_warnings(items: Iterable[FileWarning]) -> Iterator[str]:
    """One screen line per warning."""
    for w in items:
        yield f"WARNING {shown(w.path)}: {shown(w.message)}"
