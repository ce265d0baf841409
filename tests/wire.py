"""The wire shapes of the spec, written out once for the tests (never taken from the code)."""

LATEST_RUN_KEYS = {
    "pipeline_id",
    "pipeline_run_id",
    "executor_id",
    "executor_name",
    "stage_status_list",
    "status",
    "run_number",
    "trigger_type",
    "build_params",
    "artifact_params",
    "start_time",
    "end_time",
    "modify_url",
    "detail_url",
}
"""The 14 keys of PipelineLatestRun."""

BUILD_PARAM_KEYS = {
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
}
"""The 14 keys of build_params."""
