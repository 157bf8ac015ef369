"""emoji_async: an asyncio-native client for the DashScope Emoji service.

One portrait in, one short animated-expression video out::

    async with EmojiClient() as client:
        video = await client.generate("https://example.com/portrait.png", "mengwa_kaixin")
        print(video.video_url)
"""

from . import events
from ._budget import Budget, Prices, Spending
from ._client import EmojiClient
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
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseLostError,
    ServerError,
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
from ._jobs import EmojiJob, JobOutcome, Outcomes
from ._limits import RateLimits, RedisPacing, SharedPacingError
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
from ._task import Task
from ._templates import Template, TemplateInfo, templates
from ._transport import Timeouts

__version__ = "0.1.0"

__all__ = [
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
    "EmojiClient",
    "EmojiError",
    "EmojiJob",
    "FaceDetection",
    "FaceRejectedError",
    "InvalidRequestError",
    "JobOutcome",
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
    "events",
    "templates",
]
