"""Exception types raised by the core. The CLI maps them to exit codes; nothing here knows about click."""

from __future__ import annotations


class CrnnError(Exception):
    """Base class for every error crnn raises on purpose."""


class UsageError(CrnnError):
    """The user asked for something inconsistent (bad option value, mismatched dictionary). Exit 2."""


class ImageError(CrnnError):
    """One image could not be read or decoded. Batch work reports it and goes on."""


class ImageTooLargeError(ImageError):
    """An image's pixel count is over the decode limit (a service answers 413, not 422)."""


class ModelError(CrnnError):
    """A model file is missing, corrupt or not what crnn expects."""


class MetadataError(ModelError):
    """A model's embedded crnn metadata is malformed or of an unknown version."""


class BackendError(CrnnError):
    """A backend is unknown, not installed, or failed to load."""


class DatasetError(CrnnError):
    """A dataset (label file, LMDB, folder) is missing or unreadable as a whole."""


class ConfigError(UsageError):
    """A configuration file or override names an unknown key or holds a wrong type."""


class CrnnWarning(UserWarning):
    """Something crnn assumed that the user should know about; the CLI prints it as one line."""


class UnsafeFileError(CrnnError):
    """A file tried to do something a data file must not do (e.g. a pickle that imports code)."""
