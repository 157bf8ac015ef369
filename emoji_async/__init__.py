"""emoji_async: an asyncio-native client for the DashScope Emoji service.

One portrait in, one short animated-expression video out::

    async with EmojiClient() as client:
        video = await client.generate("https://example.com/portrait.png", "mengwa_kaixin")
        print(video.video_url)
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
from ._journal import Journal
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
from ._policy import PollPolicy, PollSchedule, RetryPolicy
from ._quoting import shown
from ._shared_config import RedisPacing
from ._task import Task
from ._templates import Template, TemplateInfo, templates
from ._transport import Timeouts
from ._validation import check_image_url, local_image_path, read_image_file
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
    "Journal",
    "JournalError",
    "NotFoundError",
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
    "check_image_url",
    "events",
    "file_name_for",
    "local_image_path",
    "read_image_file",
    "resolve_base_url",
    "shown",
    "templates",
]
