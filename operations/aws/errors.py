"""The one domain error that AWS adapters raise."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

# Error codes worth retrying: the same call may succeed later.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalException",
        "LimitExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NotFoundException",
        "ResourceNotFound",
    }
)


class AwsError(Exception):
    """An AWS call failed.

    ``transient`` says whether retrying later may help (throttling, timeouts,
    5xx); ``code`` is the AWS error code; ``operation`` is the API name, so a
    page can say which permission is missing on AccessDenied.
    """

    def __init__(
        self, message: str, *, code: str = "", operation: str = "", transient: bool = False
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.operation = operation
        self.transient = transient

    @property
    def access_denied(self) -> bool:
        return self.code in ACCESS_DENIED_CODES

    @property
    def not_found(self) -> bool:
        return self.code in NOT_FOUND_CODES

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        code = f"{self.code}: " if self.code else ""
        return f"{where}{code}{self.message}"


def translate(exc: Exception, operation: str = "") -> AwsError:
    """Turn a botocore exception into an ``AwsError``."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", "")) or str(exc)
        op = operation or getattr(exc, "operation_name", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        transient = code in TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
        return AwsError(message, code=code, operation=op, transient=transient)
    if isinstance(exc, ConnectionError | ReadTimeoutError):
        return AwsError(str(exc), code=type(exc).__name__, operation=operation, transient=True)
    if isinstance(exc, BotoCoreError):
        return AwsError(str(exc), code=type(exc).__name__, operation=operation, transient=False)
    return AwsError(str(exc), code=type(exc).__name__, operation=operation)
