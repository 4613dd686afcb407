"""Per-frame parallel work through Dask: threads in-process, a local cluster, or a scheduler.

Steps call :func:`map_frames` with a pure, picklable per-frame function; results come back
in input order, each either the function's value or the exception it raised, so one bad
frame never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nightpipe.config import ParallelConfig
from nightpipe.progress import NullProgress, Progress

log = logging.getLogger(__name__)
SINGLE_THREADED_KERNELS = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """The result of one item: ``value`` when it worked, ``error`` when it raised."""

    value: R | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the item worked."""
        return self.error is None


def _guarded(func: Callable[[T], R], item: T) -> Outcome[R]:
    try:
        return Outcome(value=func(item))
    except Exception as exc:
        return Outcome(error=exc)


def _collect(future: Any) -> Outcome[Any]:
    """The outcome of a finished Dask future (a lost worker becomes the item's error)."""
    try:
        result = future.result()
    except Exception as exc:  # the task itself never raises (guarded): the worker died
        return Outcome(error=exc)
    return result if isinstance(result, Outcome) else Outcome(value=result)


def _deliver(
    outcome: Outcome[R] | None, index: int, on_result: Callable[[int, Outcome[R]], None] | None
) -> None:
    if on_result is not None and outcome is not None:
        on_result(index, outcome)


@contextmanager
def dask_client(config: ParallelConfig) -> Iterator[Any]:
    """A ``distributed.Client`` for ``workers > 0`` or a scheduler address, else ``None``."""
    if config.scheduler:
        from distributed import Client

        client = Client(config.scheduler)
        try:
            yield client
        finally:
            client.close()
    elif config.workers > 0:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=config.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # None still binds 8787; port 0 lets clusters coexist
            memory_limit="auto",
            env=SINGLE_THREADED_KERNELS,  # one frame per process: compiled kernels need not fan out
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    else:
        yield None


def map_frames(
    func: Callable[[T], R],
    items: Sequence[T],
    config: ParallelConfig,
    *,
    client: Any = None,
    progress: Progress | None = None,
    description: str = "frames",
    label: Callable[[T], str] = str,
    on_result: Callable[[int, Outcome[R]], None] | None = None,
) -> list[Outcome[R]]:
    """Apply ``func`` to every item, in parallel, keeping order and catching per-item errors.

    With a Dask ``client`` the items are submitted to the cluster (at most ``2 x workers``
    in flight, so memory stays bounded); otherwise a thread pool of ``config.threads``
    runs them in this process (numpy, numba and astropy release the GIL in the heavy parts);
    with ``config.threads == 1`` they run one after the other in this thread.

    Parameters
    ----------
    on_result
        Called in this process and thread with ``(index, outcome)`` as each item finishes
        (in input order except with a Dask client): the place for database writes, which
        workers must not do.

    When ``on_result`` or ``progress`` raises (a stop asked for between two frames), the items
    not started are dropped and those in hand finish without being delivered.
    """
    progress = progress or NullProgress()
    progress.start(len(items), description)
    results: list[Outcome[R] | None] = [None] * len(items)
    try:
        if client is not None:
            from distributed import as_completed

            window = max(2, 2 * len(client.scheduler_info().get("workers", {}) or [1]))
            # the function (and what it holds: settings, a solver with its catalogue) goes to
            # every worker once, not with every frame, and keeps its caches between frames
            shipped = client.scatter(func, broadcast=True, hash=False)
            pending = iter(enumerate(items))
            futures: dict[Any, int] = {}
            try:
                for index, item in pending:
                    futures[client.submit(_guarded, shipped, item, pure=False)] = index
                    if len(futures) >= window:
                        break
                ac = as_completed(list(futures))
                for future in ac:
                    index = futures.pop(future)
                    results[index] = _collect(future)
                    _deliver(results[index], index, on_result)
                    progress.advance(label(items[index]))
                    nxt = next(pending, None)
                    if nxt is not None:
                        new = client.submit(_guarded, shipped, nxt[1], pure=False)
                        futures[new] = nxt[0]
                        ac.add(new)
            finally:  # stopped early (a stop asked for between two frames): drop the frames in flight
                if futures:
                    client.cancel(list(futures))
        elif config.threads <= 1 or len(items) <= 1:
            for index, item in enumerate(items):
                results[index] = _guarded(func, item)
                _deliver(results[index], index, on_result)
                progress.advance(label(item))
        else:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=config.threads)
            try:
                for index, outcome in enumerate(pool.map(lambda it: _guarded(func, it), items)):
                    results[index] = outcome
                    _deliver(outcome, index, on_result)
                    progress.advance(label(items[index]))
            finally:  # stopped early: the frames in hand finish, those not started are dropped
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        progress.stop()
    return [r if r is not None else Outcome(error=RuntimeError("not run")) for r in results]
