"""Makes ``pytest.mark.xdist_group`` group again under pytest 9 (a plugin of tests/conftest.py).

``--dist loadgroup`` (xdist 3.8) tags each grouped test by rewriting ``item._nodeid`` to
``<id>@<group>``, and the controller sends all tests of one group to one worker. pytest 9 keeps
a node's id in ``item._id`` and no longer reads ``_nodeid``, so the tag is lost and nothing is
grouped: both workers then start their own Docker engine and build both images. This copies
the tag to where pytest reads it. A no-op without xdist, or once xdist sets the id itself.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from _pytest.nodeid import coerce_node_id

    for item in items:
        tagged = getattr(item, "_nodeid", None)
        if isinstance(tagged, str) and tagged != item.nodeid:
            item._id = coerce_node_id(tagged)  # type: ignore[attr-defined]
