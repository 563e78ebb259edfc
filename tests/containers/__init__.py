"""The container images, built from docker/ and run as Lambda runs them (marker: image, in
each module's pytestmark)."""

import pytest

# Every image test: one xdist worker (they share one engine and one build), and time for
# the first of them to build the base and both images.
MARKS = [pytest.mark.xdist_group("images"), pytest.mark.timeout(1200)]
