"""emoji_async: an asyncio-native client for the DashScope Emoji service.

One portrait in, one short animated-expression video out::

    async with EmojiClient() as client:
        video = await client.generate("https://example.com/portrait.png", "mengwa_kaixin")
        print(video.video_url)

Layers, bottom to top. A module imports (at run time) only from its own layer
or the layers below it, never in a circle; ``tests/test_layers.py`` reads this
table and holds every module of the package to it (a new module must be
placed here to pass)::

    values    _quoting _redact _urls _version _templates _image_headers _values
              _errors _api_errors _checks _models _validation _budget _jobs
              _paid_request _notice _notice_signing _notice_errors events
    policy    _policy _adaptive _poll_placement _notify_policy _limits _config
              _shared_config _reporting
    wire      _wire_shapes _wire _answers _saving _transport_errors _transport
    service   _calls _uploads _pacer _task_board _notices _lane_lock _lanes _pacing
              _shared_scripts _shared_lock_scripts _shared_queue _shared_link _shared_lock
              _shared_notices _shared _api
    tasks     _task _downloads _attempts _verdicts _ledger _submission _records
              _orphans _listing _settlement _reconcile _journal_entries
              _journal_schema _journal_rules _journal_store _journal_sightings _journal
              _journal_null
    batch     _batch_options _batch_refusal _batch_spending _batch_resume _batch_moves
              _batch_files _batch_job _batch
    client    _task_list_query _paid_requests _client_settings _client_lifetime _generating
              _client_batches _client
    faces     __init__ __main__ cli notify testing

aiohttp is imported only by ``_transport*`` (and the simulator in ``testing``,
and ``notify``'s certificate fetch and aiohttp handler), redis only by the
``_shared*`` modules, backoff only by ``_policy``, cattrs only by ``_wire``, rich
only by ``cli``, cryptography only by ``notify._certificates`` (and the simulator's
signing key).
"""

from . import events
from ._budget import Budget, Prices, Spending
from ._client import EmojiClient

# ENV_API_KEY and ENV_BASE_URL: the environment variables a client reads its key and its
# base URL from, when it is given none.
from ._config import ENV_API_KEY, ENV_BASE_URL, resolve_base_url
from ._errors import (
    AccountError,
    APIError,
    AuthenticationError,
    BillingError,
    ClientStateError,
    ConfigurationError,
    ConnectError,
    DownloadError,
    EmojiError,
    FaceRejectedError,
    InvalidRequestError,
    JournalError,
    ModelOrWorkspaceNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseLostError,
    ServerError,
    SharedPacingError,
    SubmissionUncertainError,
    TaskCanceledError,
    TaskError,
    TaskFailedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    TransportError,
    UnexpectedResponseError,
    ValidationError,
    WaitTimeoutError,
)
from ._jobs import EmojiJob, JobOutcome, Outcomes, file_name_for
from ._limits import RateLimits
from ._models import (
    AbandonedTask,
    BBox,
    FaceDetection,
    OrphanTask,
    TaskPage,
    TaskSnapshot,
    TaskStatus,
    TaskSummary,
    Usage,
    VideoResult,
)
from ._notice_errors import NotificationRefusedError
from ._notices import NoticeCounts, Notices
from ._notify_policy import NotifyPolicy
from ._policy import PollPolicy, PollSchedule, RetryPolicy
from ._quoting import shown
from ._shared_config import RedisPacing
from ._task import Task
from ._templates import Template, TemplateInfo, templates
from ._transport import Timeouts
from ._validation import check_image, check_image_url
from ._values import Lane
from ._version import VERSION as __version__

# Plain code-point order, as the public-API tests check, not ruff's isort style.
__all__ = [  # noqa: RUF022
    "APIError",
    "AbandonedTask",
    "AccountError",
    "AuthenticationError",
    "BBox",
    "BillingError",
    "Budget",
    "ClientStateError",
    "ConfigurationError",
    "ConnectError",
    "DownloadError",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "EmojiClient",
    "EmojiError",
    "EmojiJob",
    "FaceDetection",
    "FaceRejectedError",
    "InvalidRequestError",
    "JobOutcome",
    "JournalError",
    "Lane",
    "ModelOrWorkspaceNotFoundError",
    "NotFoundError",
    "NoticeCounts",
    "Notices",
    "NotificationRefusedError",
    "NotifyPolicy",
    "OrphanTask",
    "Outcomes",
    "PermissionDeniedError",
    "PollPolicy",
    "PollSchedule",
    "Prices",
    "RateLimitError",
    "RateLimits",
    "RedisPacing",
    "ResponseLostError",
    "RetryPolicy",
    "ServerError",
    "SharedPacingError",
    "Spending",
    "SubmissionUncertainError",
    "Task",
    "TaskCanceledError",
    "TaskError",
    "TaskFailedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "TaskPage",
    "TaskSnapshot",
    "TaskStatus",
    "TaskSummary",
    "Template",
    "TemplateInfo",
    "Timeouts",
    "TransportError",
    "UnexpectedResponseError",
    "Usage",
    "ValidationError",
    "VideoResult",
    "WaitTimeoutError",
    "__version__",
    "check_image",
    "check_image_url",
    "events",
    "file_name_for",
    "resolve_base_url",
    "shown",
    "templates",
]
