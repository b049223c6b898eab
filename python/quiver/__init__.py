"""Quiver client: versioned ML label datasets over Arrow Flight.

    import quiver
    q = quiver.connect("grpc://127.0.0.1:50051", token="...")
    q.sql("SELECT class, count(*) FROM demo AS OF TAG 'v1' GROUP BY class")
    ds = q.dataset("demo").at(tag="v1")
    table = ds.to_table(columns=["sample_id", "label_id", "score"], filter="score > 0.5")
    loader = torch.utils.data.DataLoader(ds.to_torch(batch_size=256, shuffle_seed=7),
                                         batch_size=None, num_workers=2)
"""

from .client import DEFAULT_URL, Client, connect
from .dataset import Dataset
from .errors import (
    AlreadyExists,
    Cancelled,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuiverError,
    ServerError,
    TimedOut,
    Unauthenticated,
    Unauthorized,
    Unavailable,
    Unsupported,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "Client",
    "Dataset",
    "connect",
    "QuiverError",
    "AlreadyExists",
    "Cancelled",
    "Conflict",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ServerError",
    "TimedOut",
    "Unauthenticated",
    "Unauthorized",
    "Unavailable",
    "Unsupported",
]
