"""Names a pipeline variable may not have, because every variable becomes an environment
variable of each step, where these would change how the step runs rather than what it reads.

Three groups (the README lists them for users):

- what the shell, the dynamic loader and language runtimes read before a script's first line
  (`PATH`, `LD_PRELOAD`, `BASH_ENV`, `PYTHONSTARTUP`, `NODE_OPTIONS`, …): a developer who may
  set a run-time variable would otherwise run code of their choosing on the agent;
- `HOME`, where tools find their configuration (git's `core.fsmonitor` runs a command);
- what Stageline itself sets for steps (`STEP_ENVIRONMENT`), which a variable would silently
  replace, and the whole `STAGELINE_` namespace.

Names are compared exactly: environment variables are case-sensitive.

A code source with an alias also has variables of its own, `<ALIAS>_REPO_COMMIT_ID` and the
others of `SOURCE_SUFFIXES` (`source_variables`). Those are refused only for the pipeline's
own aliases (a pipeline without code sources may well have a `DOCKER_REPO_URL`), and what
Stageline sets always wins over a variable of the same name.
"""

STEP_ENVIRONMENT = frozenset(
    {
        "CI",
        "STAGELINE",
        "PROJECT_ID",
        "PIPELINE_ID",
        "PIPELINE_NAME",
        "PIPELINE_RUN_ID",
        "RUN_NUMBER",
        "PIPELINE_NUMBER",
        "TRIGGER_TYPE",
        "EXECUTOR_ID",
        "EXECUTE_USER",
        "COMMIT_ID",
        "COMMIT_ID_SHORT",
        "COMMIT_MESSAGE",
        "BUILD_TYPE",
        "BRANCH",
        "TARGET_BRANCH",
        "SOURCE_BRANCH",
        "TAG",
        "MERGE_ID",
        "REPO_URL",
        "STAGE_NAME",
        "JOB_NAME",
        "JOB_RUN_ID",
        "STEP_NAME",
        "STEP_RUN_ID",
        "WORKSPACE",
    }
)
"""Every variable Stageline sets for a step besides the pipeline's own (a unit test holds the
server's and the agent's code to this list)."""

RESERVED_NAMES = STEP_ENVIRONMENT | frozenset(
    {
        # the shell (bash -e) and what it reads at start-up
        "PATH",
        "ENV",
        "BASH_ENV",
        "IFS",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "CDPATH",
        "GLOBIGNORE",
        "PROMPT_COMMAND",
        "HOME",
        # the C library
        "GCONV_PATH",
        "HOSTALIASES",
        "LOCPATH",
        "NLSPATH",
        # language runtimes' start-up options
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
    }
)
RESERVED_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_", "STAGELINE_")
SOURCE_SUFFIXES = ("_REPO_COMMIT_ID", "_REPO_URL", "_REPO_BRANCH", "_REPO_TAG")
"""What follows a code source's alias (upper-cased) in the names of its variables."""


def source_variables(alias: str) -> tuple[str, ...]:
    """The variables Stageline sets for the code source with this alias."""
    return tuple(f"{alias.upper()}{suffix}" for suffix in SOURCE_SUFFIXES)


def reserved(name: str) -> bool:
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)


def reserved_problem(name: str) -> str:
    """Why `name` is refused, for an error message that follows the field path."""
    return (
        f"'{name}' is reserved: it would change how steps run (names such as PATH, LD_*,"
        " BASH_ENV, PYTHON* and those Stageline sets for steps are refused; see the README)"
    )
