"""A dataset at a ref: reads (Flight), writes (DoPut), PyTorch streaming."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Sequence

import pyarrow as pa
import pyarrow.flight as flight

from .client import _as_table, _concat, _json_bytes, _parse_json, _translated  # noqa: F401
from .client import endpoint_location
from .errors import QuiverError

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client


class Dataset:
    """Dataset ``name`` at one ref (default: the head of branch ``main``).

    ``ref`` uses the server's syntax: ``branch:NAME``, ``tag:NAME``, ``version:IDPREFIX`` or
    a bare name. Handles are cheap and immutable; :meth:`at` returns a new one.
    """

    def __init__(self, client: "Client", name: str, ref: str = "branch:main"):
        self._client = client
        self.name = name
        self.ref = ref
        self._commit: Optional[str] = None

    def __repr__(self) -> str:
        return f"quiver.Dataset({self.name!r}, ref={self.ref!r})"

    @property
    def client(self) -> "Client":
        return self._client

    # ------------------------------------------------------------------ refs
    def at(self, tag: Optional[str] = None, branch: Optional[str] = None,
           version: Optional[str] = None) -> "Dataset":
        """The same dataset at a tag, a branch or a version (commit id or unique prefix).

        Give exactly one of ``tag``, ``branch``, ``version``.
        """
        given = [(k, v) for k, v in (("tag", tag), ("branch", branch), ("version", version)) if v is not None]
        if len(given) != 1:
            raise ValueError("Dataset.at() takes exactly one of tag=, branch=, version=")
        kind, value = given[0]
        return Dataset(self._client, self.name, f"{kind}:{value}")

    def flight_info(self, columns: Optional[Sequence[str]] = None, filter: Optional[str] = None,
                    shards: int = 1, seed: Optional[int] = None,
                    run_id: Optional[str] = None) -> flight.FlightInfo:
        """GetFlightInfo for a selection of this dataset: the commit is pinned once, here."""
        cmd: dict = {"dataset": self.name, "ref": self.ref, "shards": int(shards)}
        if columns is not None:
            cmd["columns"] = list(columns)
        if filter is not None:
            cmd["filter"] = filter
        if seed is not None:
            cmd["seed"] = int(seed)
        if run_id is not None:
            cmd["run_id"] = str(run_id)
        info = self._client.get_flight_info(cmd)
        meta = _parse_json(info.app_metadata, "FlightInfo.app_metadata") if info.app_metadata else None
        commit = meta.get("commit") if isinstance(meta, dict) else None
        if commit is None and info.endpoints:
            em = _parse_json(info.endpoints[0].app_metadata, "endpoint app_metadata")
            if isinstance(em, dict):
                commit = em.get("commit")
        if commit:
            self._commit = commit
        return info

    def resolve(self) -> str:
        """Ask the server which commit this ref points at now (a 64-hex commit id)."""
        self.flight_info(shards=1)
        if not self._commit:
            raise QuiverError(f"the server did not report the commit of {self.name}@{self.ref}")
        return self._commit

    @property
    def commit_id(self) -> str:
        """The commit the server pinned for the last read of this handle (resolved if none yet)."""
        return self._commit or self.resolve()

    def pinned(self) -> "Dataset":
        """A handle on the exact commit this ref points at now (immune to later commits)."""
        return Dataset(self._client, self.name, f"version:{self.resolve()}")

    # ------------------------------------------------------------------ reads
    def to_batches(self, columns: Optional[Sequence[str]] = None,
                   filter: Optional[str] = None,
                   run_id: Optional[str] = None) -> Iterator[pa.RecordBatch]:
        """Stream the selection as record batches (all shards, in order).

        ``run_id`` records the read (the commit it resolved to) in the lineage log.
        """
        info = self.flight_info(columns=columns, filter=filter, shards=1, run_id=run_id)

        def gen():
            for endpoint in info.endpoints:
                yield from self._client.read_ticket(endpoint.ticket, endpoint_location(endpoint))

        return gen()

    def to_table(self, columns: Optional[Sequence[str]] = None,
                 filter: Optional[str] = None, run_id: Optional[str] = None) -> pa.Table:
        """The selection as one ``pyarrow.Table``. ``filter`` is a SQL predicate; ``run_id``
        records the read (the commit it resolved to) in the lineage log."""
        info = self.flight_info(columns=columns, filter=filter, shards=1, run_id=run_id)
        return self._client._read_info(info)

    def to_pandas(self, columns: Optional[Sequence[str]] = None, filter: Optional[str] = None,
                  run_id: Optional[str] = None):
        return self.to_table(columns=columns, filter=filter, run_id=run_id).to_pandas()

    def to_torch(self, columns: Optional[Sequence[str]] = None, batch_size: int = 1024,
                 shuffle_seed: Optional[int] = None, transform: Optional[Callable] = None,
                 shards: Optional[int] = None, run_id: Optional[str] = None,
                 filter: Optional[str] = None, balance: str = "even",
                 world_size: Optional[int] = None, rank: Optional[int] = None):
        """A ``torch.utils.data.IterableDataset`` over the selection.

        The ref is resolved to one commit here (one GetFlightInfo, recorded under ``run_id``
        in the lineage log when given). Every distributed rank yields the same number of
        batches (``len(data)``): ``balance="even"`` reads every row exactly once per epoch,
        ``"pad"`` repeats up to ``world_size - 1`` rows, ``"drop"`` skips up to
        ``world_size - 1`` (see :mod:`quiver.torch_data`). ``world_size``/``rank`` default
        to torch.distributed's. ``shuffle_seed`` shuffles the order of the shards per epoch
        (:meth:`set_epoch`) and the rows of every batch. ``state_dict``/``load_state_dict``
        resume an epoch. Use ``batch_size=None`` in the DataLoader: the dataset already
        yields batches (dicts of tensors, string columns as lists). With a ``filter``, row
        counts are not known up front: ranks split whole shards (unbalanced, no length).
        """
        from .torch_data import QuiverIterableDataset, default_shards

        if shards is None:
            shards = default_shards() if world_size is None else max(4, int(world_size) * 8)
        info = self.flight_info(columns=columns, filter=filter, shards=shards,
                                seed=shuffle_seed, run_id=run_id)
        return QuiverIterableDataset.from_flight_info(
            info, url=self._client.url, token=self._client.token,
            flight_kwargs=self._client._flight_kwargs, commit=self._commit,
            batch_size=batch_size, shuffle_seed=shuffle_seed, transform=transform,
            balance=balance, world_size=world_size, rank=rank,
        )

    # ------------------------------------------------------------------ writes
    def write(self, data, branch: str = "main", message: Optional[str] = None,
              mode: str = "upsert") -> dict:
        """Write rows to ``branch`` as one commit (DoPut).

        ``mode`` is ``"upsert"`` (rows replace rows with the same key) or ``"append"``.
        Returns the server's ``{"commit": id, "rows": n}``.
        """
        if mode not in ("upsert", "append"):
            raise ValueError("mode must be 'upsert' or 'append'")
        table = _as_table(data)
        cmd = {"dataset": self.name, "branch": branch, "mode": mode,
               "message": message if message is not None else f"write {table.num_rows} rows (quiver python client)"}
        result = self._client.put(cmd, table)
        if isinstance(result, dict) and result.get("commit"):
            self._commit = None  # the ref moved
        return result if result is not None else {}

    # ------------------------------------------------------------------ conveniences
    def commits(self, branch: str = "main", limit: Optional[int] = None) -> List[dict]:
        return self._client.commits(self.name, branch=branch, limit=limit)

    def create_branch(self, name: str, from_ref: Optional[str] = None) -> dict:
        return self._client.create_branch(self.name, name, from_ref=from_ref)

    def create_tag(self, name: str, at: Optional[str] = None) -> dict:
        return self._client.create_tag(self.name, name, at=at)

    def merge(self, source: str, target: str = "main", message: Optional[str] = None) -> dict:
        return self._client.merge(self.name, source, target=target, message=message)

    def merge_preview(self, source: str, target: str = "main") -> dict:
        return self._client.merge_preview(self.name, source, target=target)

    def label_history(self, group, label=None, ref: Optional[str] = None):
        return self._client.label_history(self.name, group, label=label, ref=ref)

    def revert(self, commit: str, branch: str = "main", message: Optional[str] = None) -> dict:
        return self._client.revert(self.name, commit, branch=branch, message=message)

    def reset(self, branch: str, to: str, message: Optional[str] = None) -> dict:
        return self._client.reset(self.name, branch, to, message=message)
