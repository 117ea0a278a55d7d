"""The KIE client: the only code that knows KIE's wire format.

* :mod:`~kie.client`: :class:`KieClient` — createTask, recordInfo, credit, file upload, result download;
* :mod:`~kie.download`: a result fetched only from where results live (https, public addresses
  checked after resolution and at every redirect, a content type that fits the kind);
* :mod:`~kie.endpoint`: the seam for endpoint families; :mod:`~kie.jobs` is the jobs (Market) API behind it;
* :mod:`~kie.envelope`: any answer read into KIE's envelope or a typed error; :mod:`~kie.fields` its loose fields;
* :mod:`~kie.errors`: what went wrong, retryable or not, ambiguous or not;
* :mod:`~kie.limiter`: the shared limits (createTask ≤ 18 per 10 s, recordInfo ≤ 10 per s);
* :mod:`~kie.models`: the typed results; :mod:`~kie.validate`: what a request must be before it leaves;
* :mod:`~kie.callbacks`: a callback checked (HMAC, freshness) and parsed.
"""

from kie.callbacks import BadSignature, CallbackError, MalformedCallback, parse_callback, verify_signature
from kie.client import KieClient, RetryPolicy
from kie.download import (
    KINDS,
    MAX_REDIRECTS,
    Downloader,
    GuardedResolver,
    TrustedHost,
    address_refusal,
    parse_trusted_hosts,
)
from kie.endpoint import Endpoint, Request
from kie.errors import (
    BadResponse,
    Disabled,
    DownloadRefused,
    GenerationFailed,
    InvalidRequest,
    KieError,
    Maintenance,
    NotFound,
    OutOfCredits,
    RateLimited,
    Rejected,
    ServerError,
    SubKeyLimit,
    Throttled,
    Timeout,
    TooLarge,
    Transport,
    Unauthorized,
)
from kie.limiter import CREATE, DEFAULT_RATES, RECORD, Limiter, Rate
from kie.models import Callback, Credits, ResultItem, TaskCreated, TaskRecord, TaskState, Upload

__all__ = [
    "CREATE",
    "DEFAULT_RATES",
    "KINDS",
    "MAX_REDIRECTS",
    "RECORD",
    "BadResponse",
    "BadSignature",
    "Callback",
    "CallbackError",
    "Credits",
    "Disabled",
    "DownloadRefused",
    "Downloader",
    "Endpoint",
    "GenerationFailed",
    "GuardedResolver",
    "InvalidRequest",
    "KieClient",
    "KieError",
    "Limiter",
    "Maintenance",
    "MalformedCallback",
    "NotFound",
    "OutOfCredits",
    "Rate",
    "RateLimited",
    "Rejected",
    "Request",
    "ResultItem",
    "RetryPolicy",
    "ServerError",
    "SubKeyLimit",
    "TaskCreated",
    "TaskRecord",
    "TaskState",
    "Throttled",
    "Timeout",
    "TooLarge",
    "Transport",
    "TrustedHost",
    "Unauthorized",
    "Upload",
    "address_refusal",
    "parse_callback",
    "parse_trusted_hosts",
    "verify_signature",
]
