"""The client commands, for `cli.main` to add to the `stageline` program: importing the modules
registers their commands on `session.app`."""

from stageline.cli.client import account, actions, pipeline_files, views
from stageline.cli.client.session import PASSWORD_RULE, app, json_before_command, wants_json

__all__ = [
    "PASSWORD_RULE",
    "account",
    "actions",
    "app",
    "json_before_command",
    "pipeline_files",
    "views",
    "wants_json",
]
