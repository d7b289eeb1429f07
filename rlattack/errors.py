"""The one error type that means "the user asked for something wrong"."""


class UserInputError(ValueError):
    """Bad user input: the CLI prints its message on one line and exits with status 2."""
