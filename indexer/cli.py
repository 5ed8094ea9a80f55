"""``indexer``: thin click wrappers over ``indexer.pipeline``.

Exit status: 0 all good; 1 the run finished but rejected some files (listed on
screen and in the ledger); 2 usage error; 3 the run could not complete.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import click

from searchcore.config import ConfigError, Settings, load_settings
from searchcore.engines import EngineError

from . import pipeline
from .pool import PoolError
from .screen import shown

EXIT_REJECTED = 1
EXIT_FAILED = 3


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--engine", type=click.Choice(["tantivy", "elasticsearch"]), help="Search engine [env SEARCH_ENGINE; default tantivy]."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Index, ledger and reports folder [env SEARCH_DATA_DIR; default ./data].",
)
@click.option("--index", "index_name", help="Index alias [env SEARCH_INDEX; default news].")
@click.option(
    "--user-dict",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Extra words for segmentation, one per line [env SEARCH_USER_DICT].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON object instead of text.")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens, step by step.")
@click.pass_context
def main(ctx: click.Context, engine, data_dir, index_name, user_dict, as_json, verbose) -> None:
    """Index folders of Chinese news posts (Jekyll .md/.markdown/.html) for search."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(engine=engine, data_dir=data_dir, index=index_name, user_dict=user_dict)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.obj = {"settings": settings, "json": as_json}


def _run(ctx: click.Context, path: Path, rebuild: bool, opts: pipeline.Options, show_progress: bool | None) -> None:
    settings = _settings(ctx)
    as_json = ctx.obj["json"]
    bar = None
    if show_progress is None:
        show_progress = sys.stderr.isatty() and not as_json

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="post", desc="indexing", file=sys.stderr, dynamic_ncols=True)
        bar.update(1)

    try:
        report = pipeline.run(settings, path, rebuild=rebuild, opts=opts, progress=progress if show_progress else None)
    except (EngineError, FileNotFoundError, OSError, PoolError) as exc:
        if bar:
            bar.close()
        _fail(as_json, f"indexing failed: {exc}")
        return
    if bar:
        bar.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        # Names and reasons come from the posts folder: shown escaped (screen.shown),
        # one line each, so no file name can forge a line or recolour the terminal.
        for line in pipeline.iter_warnings(report.warnings):
            click.echo(line, err=True)
        for line in pipeline.iter_rejections(report.rejections):
            click.echo(line, err=True)
        if report.dry_run:
            click.echo(f"dry run: would index {report.indexed} changed files and delete {len(report.would_delete)}:")
            for p in report.would_delete:
                click.echo(f"  would delete {shown(p)}")
        else:
            click.echo(report.summary())
            if report.rejections:
                click.echo(f"{report.rejected} files rejected; ledger: {settings.data_dir / 'rejected.jsonl'}", err=True)
    ctx.exit(EXIT_REJECTED if report.rejections else 0)


def _fail(as_json: bool, message: str) -> None:
    if as_json:
        click.echo(json.dumps({"error": message}, ensure_ascii=False))
    else:
        click.echo(f"error: {shown(message)}", err=True)
    sys.exit(EXIT_FAILED)


_common = [
    click.argument("path", type=click.Path(exists=True, path_type=Path)),
    click.option(
        "--workers", type=click.IntRange(0, 64), default=0, show_default=True, help="Worker processes (0 = one per core)."
    ),
    click.option(
        "--batch-size", type=click.IntRange(1, 100000), default=500, show_default=True, help="Articles per engine write."
    ),
    click.option(
        "--commit-every",
        type=click.IntRange(1),
        default=20_000,
        show_default=True,
        help="Commit (make writes durable and visible) after this many articles, and at least every 10 seconds.",
    ),
    click.option(
        "--max-bytes",
        type=click.IntRange(1024),
        default=10 * 1024 * 1024,
        show_default=True,
        help="Reject files larger than this.",
    ),
    click.option(
        "--file-timeout",
        type=click.FloatRange(0),
        default=10.0,
        show_default=True,
        metavar="SECONDS",
        help="Reject a file that takes longer than this to read and process; its worker process is "
        "stopped and replaced and the run goes on. 0 = no limit.",
    ),
    click.option(
        "--follow-symlinks",
        is_flag=True,
        help="Also read symbolic links to files outside PATH (by default they are rejected, so a link cannot "
        "publish a file from elsewhere). Links to files inside PATH are always read; links to folders are never "
        "followed (no loops); pipes, devices and sockets, linked or not, are always rejected.",
    ),
    click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal)."),
]


def _indexing(command):
    """index and reindex: PATH and the options they share (``_common``), and the run's
    ``pipeline.Options`` built once, here, from those and the command's own options
    (--dry-run, --delete, --keep-old: Options fields of the same names). The
    command receives (ctx, path, opts, progress)."""

    @click.pass_context
    @functools.wraps(command)
    def run(ctx, path, workers, batch_size, commit_every, max_bytes, file_timeout, follow_symlinks, progress, **own):
        opts = pipeline.Options(
            workers=workers,
            batch_size=batch_size,
            commit_docs=commit_every,
            max_bytes=max_bytes,
            file_timeout=file_timeout,
            follow_symlinks=follow_symlinks,
            **own,
        )
        return command(ctx, path, opts, progress)

    for deco in reversed(_common):
        run = deco(run)
    return run


@main.command()
@_indexing
@click.option("--dry-run", is_flag=True, help="List what would change (including deletions) without writing.")
@click.option("--delete/--no-delete", default=True, show_default=True, help="Remove articles whose files are gone from PATH.")
def index(ctx: click.Context, path: Path, opts: pipeline.Options, progress: bool | None) -> None:
    """Index new and changed posts under PATH; remove deleted ones (incremental).

    Only regular files are read. Each rejected file is listed on stderr (REJECTED
    path: reason) and in the ledger; what was changed in an indexed file (a title
    cut, tags over the limit) is listed as WARNING path: message.
    """
    _run(ctx, path, False, opts, progress)


@main.command()
@_indexing
@click.option("--keep-old", is_flag=True, help="Keep the previous index after the swap (for rollback).")
def reindex(ctx: click.Context, path: Path, opts: pipeline.Options, progress: bool | None) -> None:
    """Rebuild the whole index from PATH into a new index, then swap it in atomically.

    Readers keep using the old index until the new one is complete; a failed or
    interrupted rebuild changes nothing they see. Use it after changing the user
    dictionary.
    """
    _run(ctx, path, True, opts, progress)


@main.command()
@click.pass_context
def status(ctx) -> None:
    """Engine, index, document count, last run and rejected files."""
    settings = _settings(ctx)
    try:
        info = pipeline.status(settings)
    except EngineError as exc:
        _fail(ctx.obj["json"], str(exc))
        return
    if ctx.obj["json"]:
        click.echo(json.dumps(info, ensure_ascii=False, default=str))
    else:
        state = "healthy" if info["healthy"] else f"NOT healthy: {info['health'].get('error')}"
        click.echo(f"engine:    {info['engine']} ({state})")
        click.echo(f"alias:     {info['alias']} -> {info['index'] or '(none)'}")
        layout = info["layout"]
        if layout:  # Elasticsearch: the index layout and the cluster
            click.echo(
                f"layout:    {layout['shards']} shards, {layout['replicas']} replicas on "
                f"{layout['nodes']} nodes (cluster {layout['cluster']})"
            )
        click.echo(f"documents: {info['documents']}")
        click.echo(f"files:     {info['files_indexed']} indexed, {info['files_rejected']} rejected (ledger {info['ledger']})")
        last = info["last_run"]
        if last:
            click.echo(
                f"last run:  {last['command']} {shown(last['source'])} at {last['started']}: "
                f"indexed {last['indexed']}, "
                f"unchanged {last['unchanged']}, deleted {last['deleted']}, rejected {last['rejected']}, "
                f"warnings {len(last.get('warnings') or [])}"
            )
        else:
            click.echo("last run:  never")
        _echo_boilerplate(info["boilerplate"])
    ctx.exit(0 if info["healthy"] else EXIT_FAILED)


def _echo_boilerplate(bp: dict) -> None:
    """What was learned per outlet (``searchcore.boilerplate``), as status prints it."""
    if not bp["model"]:
        click.echo("boilerplate: none learned (the next `indexer reindex` learns it)")
        return
    state = "REINDEX NEEDED: the index was built with another model" if bp["reindex_needed"] else "the index uses it"
    click.echo(f"boilerplate: model {bp['model']} ({state}); a line or affix in >= {bp['share']:.0%} "
               f"and >= {bp['min_posts']} of an outlet's posts")
    for name, o in bp["outlets"].items():
        items = len(o["lines"]) + len(o["related_blocks"]) + len(o["prefixes"]) + len(o["suffixes"])
        head = f", headline as first line in {o['headline_first_line']}" if o["headline_first_line"] else ""
        click.echo(f"  {shown(name) or '(no category)'}: {o['posts']} posts sampled, {items} items learned{head}")
        for kind, label in (("prefixes", "title prefix"), ("suffixes", "title suffix"), ("lines", "line"),
                            ("related_blocks", "starts a related-links block")):
            for text in o[kind]:
                click.echo(f"    {label}: {shown(text[:100])}")


def _facet_options(fn):
    """One repeatable option per terms facet (--category, --tag, ...), as a reader filters."""
    from searchcore.facets import TERMS_FACETS

    for f in reversed(TERMS_FACETS):
        fn = click.option(f"--{f.name}", multiple=True, help=f"Filter by {f.name} as a reader would (repeatable).")(fn)
    return fn


@main.command()
@click.argument("query")
@click.option("--limit", type=click.IntRange(1, 50), default=5, show_default=True, help="How many top hits to explain.")
@_facet_options
@click.pass_context
def explain(ctx, query, limit, **selected) -> None:
    """Why the top hits for QUERY rank where they do (operators only; never shown to readers).

    Prints each hit's score and the engine's own explanation: which fields and
    terms matched (title or body, whole word or characters), with their boosts.
    """
    from searchcore.engines import open_engine
    from searchcore.search import RequestError, Searcher, SearchRequest

    settings = _settings(ctx).with_(page_size=limit)
    try:
        req = SearchRequest.from_args({"q": query, **{name: list(v) for name, v in selected.items()}})
        result = Searcher(open_engine(settings), settings).search(req, explain=True, relax=False)
    except (RequestError, EngineError) as exc:
        _fail(ctx.obj["json"], str(exc))
        return
    terms = [
        {"text": t.text, "chars": list(t.chars), "words": list(t.words), "exact": t.exact, "exclude": t.negate} for t in req.terms
    ]
    hits = [
        {"rank": i + 1, "id": h.id, "title": h.title, "score": h.score, "explanation": _as_json(h.explanation)}
        for i, h in enumerate(result.hits)
    ]
    if ctx.obj["json"]:
        click.echo(json.dumps({"query": query, "terms": terms, "total": result.total, "hits": hits}, ensure_ascii=False))
        return
    click.echo(f"query {query!r} -> terms {[t['text'] for t in terms]}; {result.total} hits")
    for h in hits:
        click.echo(f"\n#{h['rank']} score {h['score']:.3f}  {h['title']}  [{h['id']}]")
        click.echo(json.dumps(h["explanation"], ensure_ascii=False, indent=2)[:4000])


def _as_json(explanation):
    if isinstance(explanation, str):
        try:
            return json.loads(explanation)
        except ValueError:
            return explanation
    return explanation


if __name__ == "__main__":  # pragma: no cover
    main()
