"""Small conversions shared by the modules."""

import math

from .errors import InvalidArgument

EINVAL = -1016
_MAX_MS = 2**31 - 1


def timeout_ms(timeout, what):
    """A timeout in seconds (int or float > 0) as the C API's milliseconds
    (at least 1); None is 0, the client's default."""
    if timeout is None:
        return 0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
            not timeout > 0 or timeout * 1000 > _MAX_MS:
        raise InvalidArgument(EINVAL, "%s=%r: expected a number of seconds > 0 (up to %d), "
                              "or None for the client's default" % (what, timeout,
                                                                    _MAX_MS // 1000))
    return max(1, math.ceil(timeout * 1000))


def name_arg(value, what):
    """A name (str, or bytes) as the C API's bytes."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise TypeError("spoke: %s=%r: expected a str" % (what, value))


def count_arg(value, what, low=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < low or value >= 2**32:
        raise InvalidArgument(EINVAL, "%s=%r: expected an int from %d to 2**32-1"
                              % (what, value, low))
    return value
