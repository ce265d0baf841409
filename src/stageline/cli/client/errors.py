"""The failures a client command shows the user as one line and an exit code."""


class ClientError(Exception):
    """A failure to show the user in one line."""


class ApiError(ClientError):
    """The server answered with an error body."""

    def __init__(self, status_code: int, error_code: str, error_msg: str) -> None:
        super().__init__(f"{error_code}: {error_msg}" if error_code else error_msg)
        self.status_code = status_code
        self.error_code = error_code
        self.error_msg = error_msg


class NotLoggedIn(ClientError):
    """No credentials, expired ones, or ones the server refused."""


class Unreachable(ClientError):
    """The server did not answer."""


class ConfigError(ClientError):
    """The config file cannot be read or written."""
