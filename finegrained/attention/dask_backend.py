"""The exact oracle on a Dask cluster: query blocks are the tasks (``exact(..., backend="dask")``).

The exact oracle (:mod:`.exact`) is embarrassingly parallel over query rows: each row's numerators and row sum
depend on that row and on all keys. Here

1. the preparation (:func:`.exact.prepare`: input checks, column scaling of ``V``, merged keys and queries, key
   groups with their skipped columns) runs on the caller, as in the local oracle;
2. every key group (its ``K^T`` columns and its rows of ``W``) is scattered **once** to every worker;
3. each task takes one chunk of query rows and one key group, and runs the local kernel
   :func:`.exact.group_part` on the same query blocks the local oracle would use, so each task's numbers are the
   local oracle's numbers;
4. the caller merges the groups' parts by log-sum-exp (:func:`.exact.merge_parts`, in group order) and finishes
   with the local :func:`.exact.finish` (error bound, multiprecision cancellation fix-up).

The answer therefore carries the same certificate as the local oracle, and, where the workers run the same
numpy/BLAS build as the caller, it is bit-for-bit the local answer; in any case its decisions are certified by
the same error analysis.

Without a client, a :class:`distributed.LocalCluster` with one single-threaded worker per core is started for the
call and closed afterwards; ``client`` may also be the address of a running scheduler. Dask's own progress bar is
shown only with ``progress=True`` (the CLI passes it; the library never prints on its own).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from instances.errors import ParameterError
from instances.logspace import LogArray

from .exact import DEFAULT_TILE_BYTES, KeyGroup, Prepared, block_rows, finish, group_part, merge_parts, prepare

#: Query chunks per worker: enough to balance uneven workers, few enough that scheduling stays negligible.
CHUNKS_PER_WORKER = 4


def _require_distributed():
    try:
        import distributed
    except ImportError:
        raise ParameterError("the dask backend needs dask.distributed: pip install 'finegrained[parallel]'") from None
    return distributed


@contextlib.contextmanager
def open_client(client: Any = None, *, n_workers: int | None = None, processes: bool = True) -> Iterator[Any]:
    """A ``distributed.Client``: ``client`` itself, one connected to the address ``client``, or a LocalCluster.

    A LocalCluster started here has ``n_workers`` (default: one per core) single-threaded workers, whose BLAS
    is single-threaded too (Dask's nanny sets ``OMP_NUM_THREADS=1`` and friends), and is closed on exit.
    """
    distributed = _require_distributed()
    if client is not None and not isinstance(client, str):
        yield client
        return
    if isinstance(client, str):
        try:
            c = distributed.Client(client, timeout="10s")
        except Exception as exc:  # a bad address or an unreachable scheduler: one line, not Dask's traceback
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ParameterError(f"cannot connect to the Dask scheduler {client!r}: {detail}") from None
        try:
            yield c
        finally:
            c.close()
        return
    workers = int(n_workers or os.cpu_count() or 1)
    if workers < 1:
        raise ParameterError(f"a LocalCluster needs at least one worker, got {workers}")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


def worker_count(client: Any) -> int:
    """Number of workers currently attached to ``client``'s scheduler."""
    return len(client.nthreads())


def _chunk_task(Qs: np.ndarray, group: KeyGroup, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One task: the group's parts for a chunk of scaled queries, block by block as the local oracle runs them."""
    num = np.empty((Qs.shape[0], group.c))
    den = np.empty(Qs.shape[0])
    for start in range(0, Qs.shape[0], rows):
        stop = min(Qs.shape[0], start + rows)
        num[start:stop], den[start:stop] = group_part(Qs[start:stop], group)
    return num, den


def run_blocks(prep: Prepared, client: Any, rows: int, *, progress: bool = False,
               chunks: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The merged log numerators and row sums of every query row of ``prep``, computed on ``client``.

    Query chunks are whole multiples of ``rows`` so that block boundaries are the local oracle's. Returns the
    logs and an info dict (``backend``, ``workers``, ``tasks``).
    """
    distributed = _require_distributed()
    workers = max(1, worker_count(client))
    n_chunks = chunks or max(1, workers * CHUNKS_PER_WORKER)
    blocks = -(-prep.n_q // rows)
    per_chunk = max(1, -(-blocks // n_chunks)) * rows
    bounds = [(a, min(prep.n_q, a + per_chunk)) for a in range(0, prep.n_q, per_chunk)]
    # Keys and values travel once, to every worker; each query chunk travels once, to one worker.
    # hash=False: fresh keys per call, so that releasing an earlier call's identical data cannot cancel these.
    groups = client.scatter(list(prep.groups), broadcast=True, hash=False)
    q_chunks = client.scatter([np.ascontiguousarray(prep.Qs[a:b]) for a, b in bounds], hash=False)
    futures = [[client.submit(_chunk_task, q, g, rows, pure=False) for g in groups] for q in q_chunks]
    flat = [f for row in futures for f in row]
    if progress:
        distributed.progress(flat)
    results = client.gather(futures)
    log_num = np.empty((prep.n_q, prep.c))
    log_den = np.empty(prep.n_q)
    for (a, b), parts in zip(bounds, results):
        # Merged block by block, in group order: exactly the local oracle's log-sum-exp.
        for s in range(0, b - a, rows):
            e = min(b - a, s + rows)
            log_num[a + s:a + e], log_den[a + s:a + e] = merge_parts([(p[0][s:e], p[1][s:e]) for p in parts])
    return log_num, log_den, {"backend": "dask", "workers": workers, "tasks": len(flat)}


def exact_dask(Q, K, V, *, scale: float | None = None, client: Any = None, tile_bytes: int = DEFAULT_TILE_BYTES,
               dedupe: bool = True, progress: bool = False, n_workers: int | None = None,
               processes: bool = True) -> tuple[LogArray, np.ndarray | None, dict]:
    """:func:`.exact._exact` on Dask: the output, the per-entry error bound in nats (or None) and run info.

    Parameters are those of :func:`.exact.exact` plus ``client`` (a ``distributed.Client``, a scheduler
    address, or None for a LocalCluster of ``n_workers`` workers, default one per core, ``processes`` as in
    LocalCluster) and ``progress`` (show Dask's progress bar).

    Examples
    --------
    >>> Q = np.eye(2)
    >>> out, bound, info = exact_dask(Q, Q, np.array([[1.0], [-1.0]]), scale=1.0, n_workers=1, processes=False)
    >>> np.round(out.to_float().ravel(), 6).tolist(), info["backend"], info["workers"]
    ([0.462117, -0.462117], 'dask', 1)
    """
    prep = prepare(Q, K, V, scale=scale, dedupe=dedupe)
    rows = block_rows(prep, tile_bytes)  # chosen on the caller, so that every worker uses the same blocks
    with open_client(client, n_workers=n_workers, processes=processes) as c:
        log_num, log_den, info = run_blocks(prep, c, rows, progress=progress)
    out, bound = finish(prep, log_num, log_den)
    info["block_rows"] = rows
    return out, bound, info


__all__ = ["exact_dask", "open_client", "run_blocks", "worker_count"]
