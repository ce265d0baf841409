"""The keys of a run's `build_params`: what started it and which commit, branches, tag or merge
request it builds (the wire's `BuildParams`; every key is always present, null when unknown)."""

BUILD_PARAM_KEYS = (
    "action",
    "build_type",
    "commit_id",
    "event_type",
    "merge_id",
    "message",
    "source_branch",
    "tag",
    "target_branch",
    "codehub_id",
    "git_url",
    "source_codehub_id",
    "source_codehub_url",
    "source_codehub_http_url",
)
