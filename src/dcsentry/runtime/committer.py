"""Writing a batch while the next one is detected.

A batch's store transaction is mostly SQLite (or PostgreSQL) work that runs without the GIL: index
updates, page writes, the commit. Done in line, the detection loop waits for it (a third of the
processor's wall time on the wire-speed mix, docs/performance.md). The committer writes on a thread
of its own, one batch at a time and in order, while the loop detects the next batch. The rows are
encoded before they are handed over (Store.prepare_batch), so detectors can go on growing their
alerts. At most one batch is in flight: what was detected but not yet written is the batch after
the stored checkpoint, which a crash makes the processor read again.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..store.rows import Batch
from ..store.store import PreparedBatch, Store


class Committer:
    def __init__(self, store: Store, name: str = "store-writer") -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: Future[None] | None = None

    def submit(self, batch: Batch, done: Callable[[], None] | None = None) -> None:
        """Encode `batch` now and write it once the previous write is through; `done` runs on the
        writer thread after the transaction committed. A failed write raises here or in `flush`."""
        prepared = self.store.prepare_batch(batch)
        self.flush()
        self._pending = self._pool.submit(self._write, prepared, done)

    def _write(self, prepared: PreparedBatch, done: Callable[[], None] | None) -> None:
        self.store.write_batch(prepared)
        if done is not None:
            done()

    def flush(self) -> None:
        """Wait until everything submitted is stored (re-raising a failed write)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)
