"""The one error type of the data layer."""


class DataError(ValueError):
    """Bad input to the data layer: says what is wrong and what to do.

    Raised before any features are computed or any file is written.
    """
