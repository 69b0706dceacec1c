"""One error type for bad input, so the entry point can print one line instead of a traceback."""


class ConfigError(ValueError):
    """Bad user input: `key` names the config key (or file) at fault, `message` says what to do."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
