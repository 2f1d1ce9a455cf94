"""The one exception type a user can cause; the CLIs print its message on one line and exit 2."""


class EdgeGruError(Exception):
    """Bad input from the user (missing data, unsupported model, bad flag value).

    The message is a single line meant for a person; no traceback is shown for it.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
