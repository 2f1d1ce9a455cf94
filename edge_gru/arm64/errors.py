"""Why the arm64 check cannot run here, in one line (stages turn it into ``StageUnavailable``)."""


class Arm64Unavailable(Exception):
    """This machine cannot build or run the arm64 userland (no root, no binfmt, no mirror...)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
