"""The one exception family bikelib raises on purpose.

Every error a user can cause (a bad folder, an unreadable photo, a broken model
directory, a silly setting) is a `BikeLibError`. Each subclass also derives from the
built-in it resembles, so callers that only know Python's own exceptions still work.
The UI and the CLI show `str(error)` as one sentence; anything else is a bug.
"""


class BikeLibError(Exception):
    """Root of every error bikelib raises for bad input."""


class ConfigError(BikeLibError, ValueError):
    """A training or evaluation setting is out of range."""


class DatasetError(BikeLibError, ValueError):
    """A dataset cannot be used: missing, empty, wrong layout, too few photos."""


class ImageReadError(BikeLibError, ValueError):
    """One image could not be decoded."""


class ModelLoadError(BikeLibError, ValueError):
    """A saved model directory is incomplete, corrupt or from an unknown format."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """A saved model directory does not exist."""


class BackboneError(ModelLoadError, FileNotFoundError):
    """The pretrained bike backbone (data/backbone) is missing or does not fit the model."""


class ServerBusyError(BikeLibError, RuntimeError):
    """A shared server has as many trainings waiting as it queues; try again later."""


class SessionFullError(BikeLibError, OSError):
    """A session has used its share of the shared disk (`Settings.session_mb`)."""


class ArchiveError(DatasetError):
    """A dataset zip is refused: damaged, encrypted, unsafe, or over a size limit."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than bikelib decodes (a decompression-bomb guard)."""
