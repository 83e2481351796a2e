"""Errors a user can fix: the CLI prints them as one line and exits non-zero."""


class ModelyardError(Exception):
    """A problem with the user's input (config, data, environment), not a bug."""


class ConfigError(ModelyardError):
    """A config or override that cannot work."""


class DataError(ModelyardError):
    """A missing, corrupt or malformed data file."""
