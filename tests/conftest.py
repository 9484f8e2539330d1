import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Platform  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="starts the real platform, which creates Linux accounts: needs root")
    for item in items:
        if "platform" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def platform():
    """One running platform shared by the tests of a session (starting one takes a few seconds)."""
    hub = Platform()
    try:
        hub.up()
        yield hub
    finally:
        hub.close()


@pytest.fixture
def fresh_platform():
    """A platform of the test's own, for tests that stop or restart services."""
    hub = Platform()
    try:
        yield hub
    finally:
        hub.close()
