"""Exceptions that mean "the input is wrong", shared by every layer.

The CLI prints these as one line without a traceback; anything else is a bug
and keeps its traceback.
"""


class UserError(Exception):
    """An error caused by the user's input (a path, an option, a config key)."""


class ConfigError(UserError, ValueError):
    """A configuration mistake; the message names the offending key."""


class MissingResourceError(UserError, FileNotFoundError):
    """A local file the user must provide (weights, a dataset) is absent."""


class MissingConfigFileError(ConfigError, MissingResourceError):
    """A config file named by the user does not exist."""
