"""One error type for bad input, so the entry point can print one line instead of a traceback."""


class ConfigError(ValueError):
    """Bad user input: `key` names the config key (or file) at fault, `message` says what to do."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


def check_replicates(replicates) -> int:
    """`replicates` is a count of runs per setting: an integer >= 1."""
    if not isinstance(replicates, int) or isinstance(replicates, bool) or replicates < 1:
        raise ConfigError("replicates", f"must be an integer >= 1 (runs per setting, one seed each), got {replicates!r}")
    return replicates
