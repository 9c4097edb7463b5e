"""Camera fixtures shared by tests/edge, registered here once so the session-scoped copies are shared
between modules (importing them into each test module would make one copy per module)."""

from tests.edge.camera_fixtures import classifier, confident_frames  # noqa: F401 (fixtures)
