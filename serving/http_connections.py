"""Bounded connections for the HTTP front: a cap on open connections and read deadlines.

A thread-per-connection server is shut out by clients that open connections and send their
request slowly or never (slowloris): each holds a thread and a file descriptor. Two defences:

- ``ConnectionSlots`` caps the open connections. Each is either *reading* (waiting for or reading
  its request) or *serving* (its request is read and being answered). When the cap is reached, a
  new connection evicts the one that has been reading longest, once that one has had
  ``grace_s`` to send its request (a client whose request is already on its way is not cut
  off); until then, and while every connection is serving, new ones wait in the listen backlog.
- ``DeadlineReader`` gives the whole read of a request a deadline, however slowly its bytes
  trickle in (a per-``recv`` timeout alone is reset by every byte).

Example:
    >>> import socket
    >>> slots = ConnectionSlots(capacity=1)
    >>> first, first_peer = socket.socketpair()
    >>> second, second_peer = socket.socketpair()
    >>> slots.open(first, stopping=lambda: False)  # reading its request
    True
    >>> slots.open(second, stopping=lambda: False)  # the cap is reached: first is evicted
    True
    >>> first_peer.recv(1), len(slots)  # first was shut down
    (b'', 1)
    >>> for end in (first, first_peer, second, second_peer):
    ...     end.close()
"""

import io
import math
import socket
import threading
import time
from collections.abc import Callable

#: How often a wait for a free slot checks whether the server is stopping.
_STOP_POLL_S = 0.2
#: Seconds a connection may read its request before a new connection can evict it.
DEFAULT_GRACE_S = 0.1


class ConnectionSlots:
    """At most ``capacity`` open connections, evicting the longest-reading one when full.

    Args:
        capacity: the most connections open at once (>= 1).
        grace_s: seconds a connection may read its request before it can be evicted.

    Example:
        >>> import socket
        >>> slots = ConnectionSlots(capacity=2)
        >>> connection, peer = socket.socketpair()
        >>> slots.open(connection, stopping=lambda: False)
        True
        >>> slots.serving(connection); slots.close(connection); len(slots)
        0
        >>> connection.close(); peer.close()
    """

    def __init__(self, capacity: int, grace_s: float = DEFAULT_GRACE_S):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.grace_s = grace_s
        self._changed = threading.Condition()
        # connection -> when it started reading its request (None while serving)
        self._reading_since: dict[socket.socket, float | None] = {}

    def __len__(self) -> int:
        with self._changed:
            return len(self._reading_since)

    def open(self, connection: socket.socket, stopping: Callable[[], bool]) -> bool:
        """Registers a new connection as reading; False when the server stopped while waiting.

        At the cap, the connection reading longest is shut down to make room once it has read
        for ``grace_s``; until then, or while all are serving, this waits (new clients wait in
        the listen backlog).

        Example:
            >>> import socket
            >>> connection, peer = socket.socketpair()
            >>> ConnectionSlots(1).open(connection, stopping=lambda: True)
            True
            >>> connection.close(); peer.close()
        """
        with self._changed:
            while len(self._reading_since) >= self.capacity:
                wait_s = self._evict_longest_reading()
                if wait_s is None:
                    break
                if stopping():
                    return False
                self._changed.wait(min(wait_s, _STOP_POLL_S))
            self._reading_since[connection] = time.monotonic()
            return True

    def reading(self, connection: socket.socket) -> None:
        """Marks a connection as waiting for or reading a request (it may be evicted).

        Example:
            >>> ConnectionSlots(1).reading(socket.socket())  # not open: ignored
        """
        with self._changed:
            if connection in self._reading_since:
                self._reading_since[connection] = time.monotonic()
                self._changed.notify()  # a full server waiting for a slot may now evict it

    def serving(self, connection: socket.socket) -> None:
        """Marks a connection whose request is read and being answered (never evicted).

        Example:
            >>> ConnectionSlots(1).serving(socket.socket())  # not open: ignored
        """
        with self._changed:
            if connection in self._reading_since:
                self._reading_since[connection] = None

    def close(self, connection: socket.socket) -> None:
        """Frees the connection's slot (nothing when it was evicted already).

        Example:
            >>> ConnectionSlots(1).close(socket.socket())
        """
        with self._changed:
            if self._reading_since.pop(connection, False) is not False:
                self._changed.notify()

    def _evict_longest_reading(self) -> float | None:
        """Evicts the longest-reading connection (None) or says how long to wait first."""
        reading = [(since, id(c), c) for c, since in self._reading_since.items() if since]
        if not reading:
            return _STOP_POLL_S
        since, _, oldest = min(reading)
        wait_s = since + self.grace_s - time.monotonic()
        if wait_s > 0:
            return wait_s
        del self._reading_since[oldest]
        try:
            oldest.shutdown(socket.SHUT_RDWR)  # its thread's read returns at once and it exits
        except OSError:
            pass  # the client closed it already
        return None


class DeadlineReader(io.RawIOBase):
    """Reads a socket, raising ``TimeoutError`` once ``deadline`` (``time.monotonic``) passes.

    Wrap it in ``io.BufferedReader`` for ``readline``. Between reads the socket's timeout is
    ``idle_timeout_s`` again, which bounds the writes of the answer.

    Example:
        >>> import socket, time
        >>> connection, peer = socket.socketpair()
        >>> reader = DeadlineReader(connection, idle_timeout_s=5.0)
        >>> reader.deadline = time.monotonic() + 0.05
        >>> peer.sendall(b"GET / HTTP/1.1\\r\\n")  # ... and never the rest
        >>> io.BufferedReader(reader).read(100)
        Traceback (most recent call last):
        ...
        TimeoutError: the request was not read within its deadline
        >>> connection.close(); peer.close()
    """

    def __init__(self, connection: socket.socket, idle_timeout_s: float):
        super().__init__()
        self._connection = connection
        self._idle_timeout_s = idle_timeout_s
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:
        remaining = min(self.deadline - time.monotonic(), self._idle_timeout_s)
        if remaining <= 0:
            raise TimeoutError("the request was not read within its deadline")
        self._connection.settimeout(remaining)
        try:
            return self._connection.recv_into(buffer)
        except TimeoutError:
            raise TimeoutError("the request was not read within its deadline") from None
        finally:
            self._connection.settimeout(self._idle_timeout_s)
