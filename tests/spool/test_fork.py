"""Fork after the spool opened: the child never reads or writes the parent's part."""

from __future__ import annotations

import json
from pathlib import Path

from tests._proc import run_script
from tests._server import FaultServer


async def test_fork_after_the_spool_opened(server: FaultServer, tmp_path: Path) -> None:
    """The child writes its own part and delivers its own traces; the parent's part and lock
    are untouched; the parent delivers its traces; each trace arrives once."""
    spool_dir = tmp_path / "spool"
    code, out, err = await run_script("spool_fork.py", server.url, str(spool_dir))
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    name = report["parent_part"]
    child = report["child"]
    assert child["start_enqueued"] == 0
    assert child["child_sent"] == 4
    assert name in child["during"]
    assert child["during"][name] == report["before"][name], "the child touched the parent's part"
    assert len(child["during"]) == 2, "the child wrote a part of its own"
    assert report["after_child"][name] == report["before"][name]
    assert report["lock_held_after_child"], "the child released the parent's lock"
    assert report["parent"] == {"sent": 5, "enqueued": 5}
    ids = server.accepted_ids()
    assert sorted(ids) == sorted(
        [f"parent-{i}" for i in range(5)] + [f"child-{i}" for i in range(4)]
    )
    assert report["left"] == []
