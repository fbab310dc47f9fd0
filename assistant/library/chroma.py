"""Opening the Chroma store, following what other processes write to it, and telling a damaged store apart.

Only ``store.py`` uses this module; nothing else talks to Chroma.

**Other processes.** Embedded Chroma (``PersistentClient``) loads each collection's vector index (HNSW) into
the memory of the process that first reads the collection and never reads it from disk again. Another
process's ingest commits its records to ``chroma.sqlite3``, which every process reads afresh, and its vectors
to its own copy of the index. A long-lived process (the chat page) then sees the new records but not their
vectors: fetching a new chunk's vector fails with "Error finding id" and a dense query silently misses the
new papers. Chroma has no call that reloads one index, so a ``Store`` reopens the whole client (a new Rust
binding, which reads the index folders and replays the log as a fresh process does) when a library's
revision shows that another process wrote. Calls already running finish on the old opening, which is stopped
once the last of them returns: an opening that is not stopped keeps its memory (about 4 MB per opening on
the 40-paper library, measured, plus its indexes). A Chroma server is one process that owns its indexes, so
a client of a server is never reopened.

**Damage.** A ``chroma.sqlite3`` with junk in it makes Chroma fail in several ways (SQLite's "file is not a
database" or "database disk image is malformed", an undecodable log, or a Rust panic, which Python raises as
``PanicException``, a ``BaseException``); ``damage`` recognises them, so the caller can say which store is
damaged and what to do instead of showing a trace. A store folder whose database is gone but whose index
folders are left is refused before Chroma would create an empty database beside them.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from assistant.core.errors import UserError
from assistant.library.records import CHUNKS, META_ID, PAPERS, collection_name

DATABASE = "chroma.sqlite3"
INDEX_FILES_LOCK = ".index-files.lock"  # in the store's folder: see Store.index_files
INDEX_FILES_WAIT = 600.0  # seconds; a write call holds the lock for about a second
_SEGMENT_FOLDER = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# What Chroma says when its files are damaged (checked on 1.5.9 with junk written into chroma.sqlite3 at
# several offsets, and with a collection's index folder deleted).
_DAMAGE = re.compile(r"file is not a database|database disk image is malformed|\(code: (?:11|26)\)|"
                     r"Failed to pull logs from the log store|Error loading hnsw index|pickle file", re.I)


class StoreError(UserError):
    """The store cannot be reached or used; the message is for the user."""


def is_panic(exc: BaseException) -> bool:
    """A Rust panic inside Chroma (pyo3's PanicException derives from BaseException, so ``except Exception`` misses it)."""
    return type(exc).__name__ == "PanicException"


def damage(exc: BaseException) -> str | None:
    """What is wrong, in a few words, when ``exc`` says the store's files are damaged; None for any other error."""
    text = " ".join(str(exc).split())
    if is_panic(exc) or _DAMAGE.search(text):
        return text[:160] or type(exc).__name__
    return None


@contextmanager
def store_errors(where: str) -> Iterator[None]:
    """Raise what Chroma raises in the block as a StoreError that says what to do, where there is something:
    a server that stopped answering (httpx transport errors, from any call) or damaged files (``damage``)."""
    import httpx

    try:
        yield
    except UserError:
        raise
    except BaseException as exc:
        if isinstance(exc, httpx.TransportError):
            raise StoreError(f"lost the connection to the Chroma server ({short(exc)}); start it and try again") from None
        what = damage(exc)
        if what is None:
            raise
        raise damaged_store(where, what) from None


def damaged_store(where: str, what: str) -> StoreError:
    return StoreError(
        f"the library store at {where} is damaged ({what}): restore that folder from a backup, or move it aside "
        f"and run `assistant ingest` again to rebuild the library from its files")


def segment_folders(store_dir: Path) -> list[Path]:
    """The vector index folders (one per collection, named by a UUID) in an embedded store's folder."""
    if not store_dir.is_dir():
        return []
    return sorted(p for p in store_dir.iterdir() if p.is_dir() and _SEGMENT_FOLDER.match(p.name))


class Opening:
    """One opening of the store: its client, the collections opened through it, the revision each library
    had when this opening first served it, and how many calls are using it."""

    def __init__(self, client, system=None):
        self.client = client
        self.system = system  # embedded: Chroma's System, stopped once retired and unused
        self.users = 0
        self.retired = False
        self.collections: dict[str, tuple] = {}
        self.seen: dict[str, str] = {}
        self.checked: set[str] = set()  # libraries whose chunk index this opening has counted (store.Library.query)


class Store:
    """One Chroma store as this process sees it: embedded under a folder, or a server at a URL.

    ``use()`` lends the current opening to a call; ``reopen(opening)`` replaces a stale one. One ``Store``
    per embedded folder per process (``open_store`` keeps them), because Chroma itself shares one client
    system per folder in a process.
    """

    def __init__(self, store_dir: Path | None = None, chroma_url: str = "", client=None):
        self.store_dir = store_dir
        self.chroma_url = chroma_url
        self._lock = threading.Lock()
        if client is not None:  # a client made elsewhere: used as it is, never reopened
            self._current = Opening(client)
            self.reopens = False
        else:
            self.reopens = store_dir is not None and not chroma_url
            self._current = self._open()

    @property
    def where(self) -> str:
        """The store, as messages name it."""
        return self.chroma_url or str(self.store_dir or "the given Chroma client")

    @property
    def client(self):
        """The current opening's client (for a quick listing; calls that may overlap a reopen use ``use``)."""
        return self._current.client

    @contextmanager
    def use(self) -> Iterator[Opening]:
        """The current opening, kept open until the block ends even if it is replaced meanwhile."""
        with self._lock:
            opening = self._current
            opening.users += 1
        try:
            yield opening
        finally:
            with self._lock:
                opening.users -= 1
                done = opening.retired and opening.users == 0
            if done:
                _stop(opening)

    @contextmanager
    def index_files(self) -> Iterator[None]:
        """Hold the store's index-files lock (embedded stores): around every call that writes, and while an opening
        first loads a library's indexes.

        Chroma writes a collection's index to its folder (every 1,000 vectors) inside the call that adds them, by
        rewriting the files in place, and a process that loads the index meanwhile reads a torn copy: the chat
        page crashed with a segfault inside chromadb_rust_bindings after loading indexes during another
        process's ingest (eval/serve_load.py, 1,000 papers, on 1.5.9). One writer's call and one first load at a
        time keeps every load whole. filelock's FileLock: threads of one process wait for each other, a thread
        may take it again inside its own hold, and the system lets it go when its holder dies.
        """
        if not self.reopens:
            yield
            return
        from filelock import FileLock, Timeout

        lock = FileLock(self.store_dir / INDEX_FILES_LOCK, is_singleton=True)
        try:
            lock.acquire(timeout=INDEX_FILES_WAIT)
        except Timeout:
            raise StoreError(f"the library store at {self.store_dir} stayed busy for {INDEX_FILES_WAIT:.0f} s "
                             f"(another process kept writing); try again") from None
        try:
            yield
        finally:
            lock.release()

    def reopen(self, stale: Opening) -> Opening:
        """A fresh opening in place of ``stale`` (or the one another thread already put there)."""
        if not self.reopens:
            return stale
        with self._lock:
            if self._current is not stale:
                return self._current
            fresh = self._open()
            self._current = fresh
            stale.retired = True
            done = stale.users == 0
        if done:
            _stop(stale)
        return fresh

    def _open(self) -> Opening:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self.chroma_url:
            return Opening(_http_client(self.chroma_url, settings))
        store_dir = self.store_dir
        if not (store_dir / DATABASE).exists() and segment_folders(store_dir):
            raise StoreError(
                f"the library store at {store_dir} has lost its database ({DATABASE} is missing) but still holds "
                f"{len(segment_folders(store_dir))} vector index folders; the papers' records were in that file. "
                f"Restore {DATABASE} from a backup, or move {store_dir} aside and run `assistant ingest` again")
        store_dir.mkdir(parents=True, exist_ok=True)
        from chromadb.api.shared_system_client import SharedSystemClient

        # Chroma hands every client of a folder the one system it keeps per folder; forgetting it here makes
        # PersistentClient build a new one (a new Rust binding that reads the indexes from disk). The old one
        # stays with the openings still using it, until ``_stop``.
        SharedSystemClient._identifier_to_system.pop(str(store_dir), None)
        try:
            with _native_stderr_kept_on_failure():
                client = chromadb.PersistentClient(path=str(store_dir), settings=settings)
        except BaseException as exc:
            what = damage(exc)
            if what is None:
                raise
            raise damaged_store(str(store_dir), what) from None
        return Opening(client, client._system)


def _http_client(chroma_url: str, settings):
    from urllib.parse import urlparse

    import chromadb

    url = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
    if not url.hostname:
        raise StoreError(f"bad Chroma URL {chroma_url!r}: expected http://host:port")
    try:
        client = chromadb.HttpClient(host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                                     ssl=url.scheme == "https", settings=settings)
        client.heartbeat()
    except Exception as exc:  # chromadb raises several types for an unreachable server
        raise StoreError(f"cannot reach the Chroma server at {chroma_url}: {short(exc)}") from None
    return client


_ARENAS_SET = False


def _fewer_malloc_arenas() -> None:
    """Cap glibc's malloc arenas at two, once, when a process first opens an embedded store (``open_store``).

    Every opening starts a Rust runtime whose new threads get glibc arenas of their own, and what a stopped
    opening frees stays in those arenas: 100 reopens of the 1,241-paper library took a process from 301 to
    917 MB with glibc's default (8 per core), and from 299 to 398 MB with two (measured; the memory of each
    opening is freed either way). mallopt caps the arenas made from then on, so it is called before the
    first Rust runtime (and the embedding model's threads) start: called after them, it changed little
    (298 to 776 MB in 40 reopens). Not glibc: nothing to do.
    """
    global _ARENAS_SET
    if _ARENAS_SET:
        return
    _ARENAS_SET = True
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc
        pass


def _stop(opening: Opening) -> None:
    """Free a retired opening (its Rust binding and the indexes it loaded)."""
    if opening.system is not None:
        try:
            opening.system.stop()
        except Exception:  # noqa: BLE001 - freeing memory must never fail a call
            pass


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


@contextmanager
def _native_stderr_kept_on_failure():
    """Hold back what native code writes to file descriptor 2 while the block runs; pass it on if it succeeds.

    A Rust panic prints "thread '…' panicked at …" (and a backtrace when RUST_BACKTRACE is set) straight to
    fd 2 before Python sees the exception; the caller turns the exception into one line naming the store,
    and the panic's own text would only bury it. Output of a block that succeeds is written out afterwards.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedded interpreter): nothing to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                if data := held.read():
                    os.write(2, data)


_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def open_store(store_dir: Path, chroma_url: str = "") -> Store:
    """The store: a Chroma server when a URL is given, else the embedded one under ``store_dir`` (one per
    folder per process, shared by every library and App that opens it)."""
    if chroma_url:
        return Store(chroma_url=chroma_url)
    _fewer_malloc_arenas()
    key = str(Path(store_dir).resolve())
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None or not (Path(key) / DATABASE).exists():  # a folder removed and made again starts afresh
            store = _STORES[key] = Store(Path(key))
        return store


def stored_models(store, library: str) -> list[str]:
    """The embedding models (variants included) that hold papers of ``library`` in this store (or client)."""
    store = store if isinstance(store, Store) else Store(client=store)
    with store.use() as opening, store_errors(store.where):
        return _stored_models(opening.client, library)


def _stored_models(client, library: str) -> list[str]:
    out = []
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        parts = name.split("__")
        if len(parts) == 3 and parts[0] == library and parts[2] == PAPERS:
            papers = client.get_collection(name)
            if papers.count():
                out.append((papers.metadata or {}).get("embedding_model", parts[1]))
    return out


def list_libraries(store) -> list[dict]:
    """Every library in this store (or client): name, embedding model, paper and chunk counts."""
    store = store if isinstance(store, Store) else Store(client=store)
    with store.use() as opening, store_errors(store.where):
        return _list_libraries(opening.client)


def _list_libraries(client) -> list[dict]:
    out = []
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        parts = name.split("__")
        if len(parts) != 3 or parts[2] != PAPERS:
            continue
        papers = client.get_collection(name)
        meta = papers.metadata or {}
        lib = meta.get("library", parts[0])
        model = meta.get("embedding_model", parts[1])
        try:
            chunks = client.get_collection(collection_name(lib, model, CHUNKS)).count()
        except Exception:
            chunks = 0
        n = papers.count()
        has_meta = bool(papers.get(ids=[META_ID])["ids"])
        out.append({"library": lib, "embedding_model": model, "papers": n - int(has_meta), "chunks": chunks})
    return sorted(out, key=lambda r: (r["library"], r["embedding_model"]))
