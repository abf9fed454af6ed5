"""The consumer SDK is tested against a dispatch process running in a thread."""

from tests.dispatch.conftest import dispatch  # noqa: F401
