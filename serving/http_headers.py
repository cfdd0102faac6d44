"""Strict checks of a request's parsed headers, before the HTTP front reads a body.

``http.server`` parses the header block leniently: a line without a colon silently ends the
headers, and ``str.isdigit`` accepts Unicode digits such as ``²`` that ``int`` then refuses. Here
a header block is accepted only when every line is a header, ``Content-Length`` is ASCII digits
(repeated only with the same value), and no ``Transfer-Encoding`` is used; anything else is a
``HeaderError`` carrying the HTTP status to answer (400, or 501 for a transfer coding).

Example:
    >>> import email.parser
    >>> headers = email.parser.Parser().parsestr("Host: x\\r\\nContent-Length: 12\\r\\n\\r\\n")
    >>> body_length(headers)
    12
    >>> body_length(email.parser.Parser().parsestr("Content-Length: \\u00b2\\r\\n\\r\\n"))
    Traceback (most recent call last):
    ...
    dftopk_cascade.serving.http_headers.HeaderError: Content-Length must be a number of bytes in
    ASCII digits...
"""

import email.message
import re
from http import HTTPStatus

#: At most 18 digits: any such length fits an int64 and is far above every body limit.
_ASCII_LENGTH = re.compile(r"[0-9]{1,18}")


class HeaderError(ValueError):
    """A header block the front refuses; ``status`` is the HTTP status to answer.

    Example:
        >>> HeaderError(HTTPStatus.BAD_REQUEST, "bad").status
        <HTTPStatus.BAD_REQUEST: 400>
    """

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


def check_header_lines(headers: email.message.Message) -> None:
    """Raises ``HeaderError`` (400) when a line of the header block is not ``name: value``.

    Example:
        >>> import email.parser
        >>> check_header_lines(email.parser.Parser().parsestr("Host x\\r\\n\\r\\n"))
        Traceback (most recent call last):
        ...
        dftopk_cascade.serving.http_headers.HeaderError: malformed header line 'Host x': expected
        'name: value'
    """
    leftover = headers.get_payload()
    if headers.defects or leftover:
        first_line = str(leftover).strip("\r\n").split("\n")[0].rstrip("\r") if leftover else ""
        raise HeaderError(
            HTTPStatus.BAD_REQUEST,
            f"malformed header line {first_line[:80]!r}: expected 'name: value'",
        )


def body_length(headers: email.message.Message) -> int | None:
    """The body's size in bytes from ``Content-Length``; None when the request sends none.

    Raises ``HeaderError``: 400 for malformed header lines or a ``Content-Length`` that is not
    ASCII digits (or given twice with different values), 501 for a ``Transfer-Encoding``.

    Example:
        >>> import email.parser
        >>> body_length(email.parser.Parser().parsestr("Host: x\\r\\n\\r\\n")) is None
        True
    """
    check_header_lines(headers)
    if headers.get_all("Transfer-Encoding"):
        raise HeaderError(
            HTTPStatus.NOT_IMPLEMENTED,
            "Transfer-Encoding is not supported: send the body with a Content-Length header",
        )
    values = {value.strip(" \t") for value in headers.get_all("Content-Length") or []}
    if not values:
        return None
    if len(values) > 1:
        raise HeaderError(
            HTTPStatus.BAD_REQUEST, f"conflicting Content-Length headers: {sorted(values)}"
        )
    (value,) = values
    if not _ASCII_LENGTH.fullmatch(value):
        raise HeaderError(
            HTTPStatus.BAD_REQUEST,
            f"Content-Length must be a number of bytes in ASCII digits, got {value[:40]!r}",
        )
    return int(value)
