"""PyTorch streaming: an IterableDataset over the shard endpoints of one pinned commit.

Balanced for any number of GPUs: the rows of the selection (the endpoints' exact row
counts, in an order shuffled per epoch when a seed is given) are cut into ``world_size``
contiguous ranges, and every rank yields the same number of batches, so DDP never waits on
a rank that ran out. Three ways to balance (``balance=``):

* ``"even"`` (default): every row exactly once per epoch. Ranks get ``N // W`` or
  ``N // W + 1`` rows, each cut into ``B = ceil(ceil(N / W) / batch_size)`` batches of
  near-equal size (at most ``batch_size``); the batch count ``B`` is the same on every rank.
* ``"pad"``: every rank gets ``ceil(N / W)`` rows; the first rows of the epoch's order are
  read again to fill the last ranks (at most ``W - 1`` repeats), like PyTorch's
  ``DistributedSampler``. Batches are full but for the last one.
* ``"drop"``: every rank gets ``N // W`` rows; at most ``W - 1`` rows of the epoch's order
  (its last ones, different every epoch when shuffled) are skipped.

Within a rank, DataLoader worker ``w`` of ``K`` reads a contiguous block of the rank's
batches; ``__len__`` is the rank's batch count, whatever ``K``. ``state_dict()`` /
``load_state_dict()`` carry ``{"epoch", "batches_done"}``: a resumed epoch yields exactly
the batches the interrupted one had not delivered yet (with several workers, the DataLoader
starts its round over them afresh, so their order may differ).
Selections with a ``filter`` have no exact row counts up front; they fall back to whole
endpoints per rank (unbalanced, no ``__len__``).

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

from .client import Client, endpoint_location
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


BALANCE = ("even", "pad", "drop")


def rank_rows(n: int, world_size: int, rank: int, balance: str) -> List[Tuple[int, int]]:
    """Ranges ``[a, b)`` of the epoch's row order read by ``rank`` (padding wraps to 0)."""
    w = max(1, world_size)
    if balance == "even":
        a = rank * n // w
        return [(a, (rank + 1) * n // w)]
    if balance == "drop":
        per = n // w
        return [(rank * per, (rank + 1) * per)]
    per = -(-n // w)  # pad
    a, b = rank * per, (rank + 1) * per
    out = []
    pos = a
    while pos < b and n > 0:
        # past the end, the order starts again from its first row
        start = pos % n
        take = min(b - pos, n - start)
        out.append((start, start + take))
        pos += take
    return [r for r in out if r[1] > r[0]]


def batch_sizes(n: int, world_size: int, rank: int, balance: str, batch_size: int) -> List[int]:
    """Sizes of the batches of ``rank``: the same count on every rank."""
    rows = sum(b - a for a, b in rank_rows(n, world_size, rank, balance))
    if balance == "even":
        most = -(-n // max(1, world_size))
        count = -(-most // batch_size)
        return [(i + 1) * rows // count - i * rows // count for i in range(count)]
    full, rest = divmod(rows, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def worker_blocks(n_batches: int, num_workers: int) -> List[Tuple[int, int]]:
    """Contiguous blocks ``[a, b)`` of batch indexes, one per DataLoader worker."""
    k = max(1, num_workers)
    return [(w * n_batches // k, (w + 1) * n_batches // k) for w in range(k)]


def consumed_per_worker(done: int, blocks: List[Tuple[int, int]]) -> List[int]:
    """How many batches of each worker's block the first ``done`` batches a DataLoader
    delivered hold (it takes one from each worker in turn, skipping exhausted ones)."""
    lengths = [b - a for a, b in blocks]
    taken = [0] * len(lengths)
    left = min(done, sum(lengths))
    while left > 0:
        for w, n in enumerate(lengths):
            if left == 0:
                break
            if taken[w] < n:
                taken[w] += 1
                left -= 1
    return taken


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
                 endpoint_metadata: Optional[Sequence[Optional[dict]]] = None,
                 exact_rows: bool = False, balance: str = "even",
                 world_size: Optional[int] = None, rank: Optional[int] = None,
                 locations: Optional[Sequence[Optional[str]]] = None):
        super().__init__()
        if batch_size is None or int(batch_size) < 1:
            raise ValueError("batch_size must be a positive integer")
        if balance not in BALANCE:
            raise ValueError(f"balance must be one of {', '.join(BALANCE)}, not {balance!r}")
        if (world_size is None) != (rank is None):
            raise ValueError("give both world_size and rank, or neither (torch.distributed's)")
        if world_size is not None and not 0 <= int(rank) < int(world_size):
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.url = url
        self.token = token
        self.tickets = [bytes(t) for t in tickets]
        # the server each endpoint names (a replica of the catalog), None: the one asked
        self.locations = list(locations or [None] * len(self.tickets))
        self.schema = schema
        self.commit_id = commit
        self.batch_size = int(batch_size)
        self.shuffle_seed = shuffle_seed
        self.transform = transform
        self.total_records = total_records
        self.flight_kwargs = dict(flight_kwargs or {})
        self.endpoint_metadata = list(endpoint_metadata or [None] * len(self.tickets))
        self.epoch = 0
        self.balance = balance
        self.world_size = None if world_size is None else int(world_size)
        self.rank = None if rank is None else int(rank)
        self.batches_done = 0
        rows = [m.get("rows") if isinstance(m, dict) else None for m in self.endpoint_metadata]
        # exact row counts per endpoint: what balancing needs
        self.endpoint_rows: Optional[List[int]] = (
            [int(r) for r in rows] if exact_rows and all(isinstance(r, int) for r in rows) else None)

    @classmethod
    def from_flight_info(cls, info: flight.FlightInfo, url: str, token: Optional[str],
                         commit: Optional[str] = None, flight_kwargs: Optional[dict] = None,
                         **kw) -> "QuiverIterableDataset":
        tickets, metas, locations = [], [], []
        exact = False
        if info.app_metadata:
            try:
                exact = bool(json.loads(bytes(info.app_metadata).decode("utf-8")).get("exact_rows"))
            except (ValueError, AttributeError):
                exact = False
        for ep in info.endpoints:
            tickets.append(ep.ticket.ticket)
            locations.append(endpoint_location(ep))
            meta = None
            if ep.app_metadata:
                try:
                    meta = json.loads(bytes(ep.app_metadata).decode("utf-8"))
                except ValueError:
                    meta = None
            metas.append(meta)
        return cls(url, token, tickets, info.schema, commit=commit,
                   total_records=info.total_records, flight_kwargs=flight_kwargs,
                   endpoint_metadata=metas, exact_rows=exact, locations=locations, **kw)

    @property
    def num_shards(self) -> int:
        return len(self.tickets)

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle of the next iteration (call it before each epoch); a new epoch
        starts from its first batch."""
        if int(epoch) != self.epoch:
            self.batches_done = 0
        self.epoch = int(epoch)

    def state_dict(self, batches_done: Optional[int] = None) -> dict:
        """Where this rank is: ``{"epoch", "batches_done"}``. With DataLoader workers the
        dataset does not see what the loop consumed: pass ``batches_done`` (the number of
        batches the loop took this epoch)."""
        done = self.batches_done if batches_done is None else int(batches_done)
        return {"epoch": self.epoch, "batches_done": done}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next iteration is epoch ``state["epoch"]`` without its first
        ``state["batches_done"]`` batches (as the DataLoader delivered them)."""
        done = int(state.get("batches_done", 0))
        if done < 0:
            raise ValueError("batches_done must not be negative")
        self.epoch = int(state.get("epoch", 0))
        self.batches_done = done

    def _world(self) -> Tuple[int, int]:
        if self.world_size is not None and self.rank is not None:
            return self.world_size, self.rank
        return world()

    def _batch_sizes(self) -> List[int]:
        if self.endpoint_rows is None:
            raise TypeError("this selection has no exact row counts up front (a filter): "
                            "it has no length and ranks are not balanced")
        world_size, rank = self._world()
        return batch_sizes(sum(self.endpoint_rows), world_size, rank, self.balance,
                           self.batch_size)

    def __len__(self) -> int:
        """Batches this rank yields in the current epoch (the same on every rank)."""
        return max(0, len(self._batch_sizes()) - self.batches_done)

    def _order(self) -> List[int]:
        """The endpoints in this epoch's order (shuffled per epoch with a seed)."""
        order = list(range(len(self.tickets)))
        if self.shuffle_seed is not None:
            seed = (int(self.shuffle_seed) + self.epoch * EPOCH_STRIDE) & 0xFFFFFFFFFFFFFFFF
            order = [int(i) for i in np.random.default_rng(seed).permutation(len(order))]
        return order

    def _my_endpoints(self) -> List[int]:
        info = torch.utils.data.get_worker_info()
        workers, worker_id = (info.num_workers, info.id) if info is not None else (1, 0)
        world_size, rank = self._world()
        return assigned_endpoints(len(self.tickets), rank, world_size, worker_id, workers)

    def _emit(self, batch: pa.RecordBatch):
        out = batch_to_torch(batch)
        if self.transform is not None:
            out = self.transform(out)
        return out

    def _stream(self, conn: Client, j, shuffle: bool = True):
        """Record batches of endpoint j (from the replica it names), shuffled when a seed
        is set."""
        rng = None
        if shuffle and self.shuffle_seed is not None:
            rng = np.random.default_rng(int(self.shuffle_seed) + self.epoch * EPOCH_STRIDE + j)
        at = conn.at_location(self.locations[j])
        try:
            reader = at.flight_client.do_get(flight.Ticket(self.tickets[j]), at.call_options)
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

    def _rows(self, conn: Client, ranges: List[Tuple[int, int]]):
        """Record batches holding the rows ``ranges`` of the epoch's row order."""
        order = self._order()
        offsets, at = [], 0
        for j in order:
            offsets.append(at)
            at += self.endpoint_rows[j]
        for a, b in ranges:
            for j, off in zip(order, offsets):
                end = off + self.endpoint_rows[j]
                if end <= a or off >= b:
                    continue
                pos = off
                for batch in self._stream(conn, j, shuffle=False):
                    lo, hi = max(a, pos), min(b, pos + batch.num_rows)
                    if hi > lo:
                        yield batch.slice(lo - pos, hi - lo)
                    pos += batch.num_rows
                    if pos >= b:
                        break

    def _iter_balanced(self):
        info = torch.utils.data.get_worker_info()
        workers, worker_id = (info.num_workers, info.id) if info is not None else (1, 0)
        world_size, rank = self._world()
        n = sum(self.endpoint_rows)
        sizes = batch_sizes(n, world_size, rank, self.balance, self.batch_size)
        blocks = worker_blocks(len(sizes), workers)
        skip = consumed_per_worker(self.batches_done, blocks)[worker_id]
        first, last = blocks[worker_id]
        first += skip
        if first >= last:
            return
        # rows of the rank's order this worker reads
        ranges = rank_rows(n, world_size, rank, self.balance)
        start = sum(sizes[:first])
        stop = start + sum(sizes[first:last])
        mine, at = [], 0
        for a, b in ranges:
            lo, hi = max(a, a + start - at), min(b, a + stop - at)
            if hi > lo:
                mine.append((lo, hi))
            at += b - a
        conn = Client(self.url, token=self.token, **self.flight_kwargs)
        pending: List[pa.RecordBatch] = []
        pending_rows = 0
        k = first
        try:
            for batch in self._rows(conn, mine):
                pending.append(batch)
                pending_rows += batch.num_rows
                while k < last and pending_rows >= sizes[k]:
                    big = _one_batch(pending)
                    yield self._emit(self._shuffled(big.slice(0, sizes[k]), rank, k))
                    rest = big.slice(sizes[k])
                    pending = [rest] if rest.num_rows else []
                    pending_rows = rest.num_rows
                    k += 1
            if k < last and pending_rows:
                # fewer rows than the endpoints announced: hand over what came
                yield self._emit(self._shuffled(_one_batch(pending), rank, k))
        finally:
            conn.close()

    def _shuffled(self, batch: pa.RecordBatch, rank: int, k: int) -> pa.RecordBatch:
        if self.shuffle_seed is None:
            return batch
        rng = np.random.default_rng(
            [int(self.shuffle_seed) & 0xFFFFFFFFFFFFFFFF, self.epoch, rank, k])
        return batch.take(pa.array(rng.permutation(batch.num_rows)))

    def __iter__(self):
        if self.endpoint_rows is not None:
            yield from self._iter_balanced()
            return
        mine = self._my_endpoints()
        if not mine:
            return
        # a Client of this process: closed before any fork like every other, so a fork
        # while this generator is paused does not hand a live channel to the child
        conn = Client(self.url, token=self.token, **self.flight_kwargs)
        bs = self.batch_size
        pending: List[pa.RecordBatch] = []
        pending_rows = 0
        try:
            for j in mine:
                for batch in self._stream(conn, j):
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
