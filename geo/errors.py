"""Errors raised by the :mod:`geo` package."""

__all__ = ["GeoInputError"]


class GeoInputError(ValueError):
    """Invalid geographic input (coordinates, bounding boxes, adcodes).

    A :class:`ValueError` subclass, so callers that already catch ``ValueError``
    keep working; the message is plain English and safe to show to a client.

    >>> issubclass(GeoInputError, ValueError)
    True
    """
