"""PyTorch streaming: an IterableDataset over the shard endpoints of one pinned commit.

This module imports torch; :meth:`quiver.Dataset.to_torch` imports it lazily.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import torch
import torch.utils.data

from .client import Client
from .errors import FLIGHT_ERRORS, from_flight

#: Multiplier of the epoch in the per-shard shuffle seed.
EPOCH_STRIDE = 1000003
_NAT = np.iinfo(np.int64).min


def world() -> Tuple[int, int]:
    """(world_size, rank) of torch.distributed, or (1, 0) when it is not initialized."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size(), dist.get_rank()
    except Exception:  # pragma: no cover
        pass
    return 1, 0


def default_shards(workers: int = 8) -> int:
    """Shards to ask for when the caller gives none: max(4, world_size * workers)."""
    world_size, _ = world()
    return max(4, world_size * workers)


def assigned_endpoints(n_endpoints: int, rank: int, world_size: int,
                       worker_id: int, num_workers: int) -> List[int]:
    """Endpoints read by one (rank, worker): j with j % (world*workers) == rank*workers + worker."""
    total = max(1, world_size) * max(1, num_workers)
    me = rank * max(1, num_workers) + worker_id
    return [j for j in range(n_endpoints) if j % total == me]


def column_to_torch(arr: pa.Array) -> Any:
    """One Arrow column as a tensor (numbers, bools, timestamps) or a Python list (the rest)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_time64(t) or pa.types.is_date64(t):
        if pa.types.is_timestamp(t) and t.unit != "us":
            arr = arr.cast(pa.timestamp("us", tz=t.tz), safe=False)
        elif pa.types.is_duration(t) and t.unit != "us":
            arr = arr.cast(pa.duration("us"), safe=False)
        ints = arr.view(pa.int64()) if not pa.types.is_date64(t) else arr.cast(pa.int64())
        if ints.null_count:
            ints = pc.fill_null(ints, _NAT)  # NaT, as numpy spells a missing time
        return torch.from_numpy(ints.to_numpy(zero_copy_only=False, writable=True))
    if pa.types.is_date32(t) or pa.types.is_time32(t):
        ints = arr.view(pa.int32())
        if ints.null_count:
            ints = pc.fill_null(ints, np.iinfo(np.int32).min)
        return torch.from_numpy(ints.to_numpy(zero_copy_only=False, writable=True))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        if pa.types.is_boolean(t) and arr.null_count:
            arr = pc.fill_null(arr, False)
        # integers with nulls become float64 with NaN; floats keep NaN for null
        np_arr = arr.to_numpy(zero_copy_only=False, writable=True)
        if np_arr.dtype == np.float16 and not hasattr(torch, "float16"):  # pragma: no cover
            np_arr = np_arr.astype(np.float32)
        return torch.from_numpy(np_arr)
    if pa.types.is_decimal(t):
        return torch.from_numpy(arr.cast(pa.float64()).to_numpy(zero_copy_only=False, writable=True))
    return arr.to_pylist()


def batch_to_torch(batch: pa.RecordBatch) -> Dict[str, Any]:
    return {name: column_to_torch(batch.column(i)) for i, name in enumerate(batch.schema.names)}


class QuiverIterableDataset(torch.utils.data.IterableDataset):
    """Batches of one pinned commit, split across DataLoader workers and distributed ranks.

    Holds only picklable state (server URL, token, ticket bytes); each worker opens its own
    Flight connection inside ``__iter__``. Yields dicts ``{column: tensor | list}`` of up
    to ``batch_size`` rows. With ``shuffle_seed``, the rows of every received batch are
    permuted by ``numpy.random.default_rng(seed + epoch * 1000003 + shard)``; change the
    epoch with :meth:`set_epoch`.
    """

    def __init__(self, url: str, token: Optional[str], tickets: Sequence[bytes],
                 schema: pa.Schema, commit: Optional[str] = None, batch_size: int = 1024,
                 shuffle_seed: Optional[int] = None, transform: Optional[Callable] = None,
                 total_records: int = -1, flight_kwargs: Optional[dict] = None,
                 endpoint_metadata: Optional[Sequence[Optional[dict]]] = None):
        super().__init__()
        if batch_size is None or int(batch_size) < 1:
            raise ValueError("batch_size must be a positive integer")
        self.url = url
        self.token = token
        self.tickets = [bytes(t) for t in tickets]
        self.schema = schema
        self.commit_id = commit
        self.batch_size = int(batch_size)
        self.shuffle_seed = shuffle_seed
        self.transform = transform
        self.total_records = total_records
        self.flight_kwargs = dict(flight_kwargs or {})
        self.endpoint_metadata = list(endpoint_metadata or [None] * len(self.tickets))
        self.epoch = 0

    @classmethod
    def from_flight_info(cls, info: flight.FlightInfo, url: str, token: Optional[str],
                         commit: Optional[str] = None, flight_kwargs: Optional[dict] = None,
                         **kw) -> "QuiverIterableDataset":
        tickets, metas = [], []
        for ep in info.endpoints:
            tickets.append(ep.ticket.ticket)
            meta = None
            if ep.app_metadata:
                try:
                    meta = json.loads(bytes(ep.app_metadata).decode("utf-8"))
                except ValueError:
                    meta = None
            metas.append(meta)
        return cls(url, token, tickets, info.schema, commit=commit,
                   total_records=info.total_records, flight_kwargs=flight_kwargs,
                   endpoint_metadata=metas, **kw)

    @property
    def num_shards(self) -> int:
        return len(self.tickets)

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle of the next iteration (call it before each epoch)."""
        self.epoch = int(epoch)

    def _my_endpoints(self) -> List[int]:
        info = torch.utils.data.get_worker_info()
        workers, worker_id = (info.num_workers, info.id) if info is not None else (1, 0)
        world_size, rank = world()
        return assigned_endpoints(len(self.tickets), rank, world_size, worker_id, workers)

    def _emit(self, batch: pa.RecordBatch):
        out = batch_to_torch(batch)
        if self.transform is not None:
            out = self.transform(out)
        return out

    def _stream(self, client, options, j):
        """Record batches of endpoint j, shuffled when a seed is set."""
        rng = None
        if self.shuffle_seed is not None:
            rng = np.random.default_rng(int(self.shuffle_seed) + self.epoch * EPOCH_STRIDE + j)
        try:
            reader = client.do_get(flight.Ticket(self.tickets[j]), options)
            chunks = iter(reader)
        except FLIGHT_ERRORS as e:
            raise from_flight(e) from e
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except FLIGHT_ERRORS as e:
                raise from_flight(e) from e
            batch = chunk.data
            if batch is None or batch.num_rows == 0:
                continue
            if rng is not None:
                batch = batch.take(pa.array(rng.permutation(batch.num_rows)))
            yield batch

    def __iter__(self):
        mine = self._my_endpoints()
        if not mine:
            return
        # a Client of this process: closed before any fork like every other, so a fork
        # while this generator is paused does not hand a live channel to the child
        conn = Client(self.url, token=self.token, **self.flight_kwargs)
        client, options = conn.flight_client, conn.call_options
        bs = self.batch_size
        pending: List[pa.RecordBatch] = []
        pending_rows = 0
        try:
            for j in mine:
                for batch in self._stream(client, options, j):
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    if pending_rows < bs:
                        continue
                    big = _one_batch(pending)
                    k = 0
                    while big.num_rows - k >= bs:
                        yield self._emit(big.slice(k, bs))
                        k += bs
                    pending = [big.slice(k)] if big.num_rows > k else []
                    pending_rows = big.num_rows - k
            if pending_rows:
                yield self._emit(_one_batch(pending))
        finally:
            conn.close()


def _one_batch(batches: List[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    if hasattr(pa, "concat_batches"):
        return pa.concat_batches(batches)
    table = pa.Table.from_batches(batches).combine_chunks()
    return table.to_batches()[0]
