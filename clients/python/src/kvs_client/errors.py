"""What the client raises for the server's refusals."""


class KvError(Exception):
    """A non-2xx answer: its status, and the code, detail and source (`{"pointer": …}` or
    `{"parameter": …}`, when given) of the server's first error."""

    def __init__(
        self, status: int, code: str | None, detail: str, source: dict | None = None
    ) -> None:
        super().__init__(f"{status} ({code}): {detail}" if code else f"{status}: {detail}")
        self.status, self.code, self.detail, self.source = status, code, detail, source


class KvProtocolError(Exception):
    """An answer that is not shaped as the server's contract says."""


class KvValueTooLarge(KvError):
    """413: a value (or a batch of them) over the server's limit. The message is Redocly's:
    `Value size (1234.56 KB) exceeds the maximum allowed size of 1 MB (1024 KB)`."""

    def __init__(self, code: str | None, detail: str, size: int, limit: int) -> None:
        super().__init__(413, code, detail)
        self.size, self.limit = size, limit
        self.args = (
            f"Value size ({size / 1024:.2f} KB) exceeds the maximum allowed size of "
            f"{_decimal(limit / 1024 / 1024)} MB ({_decimal(limit / 1024)} KB)",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class KvConflict(KvError):
    """A transaction whose reads kept changing under it (412 on every attempt)."""

    def __init__(self, attempts: int, code: str | None, detail: str) -> None:
        super().__init__(412, code, detail)
        self.attempts = attempts
        self.args = (f"The transaction conflicted {attempts} times in a row; last: {detail}",)

    def __str__(self) -> str:
        return str(self.args[0])


def _decimal(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")
