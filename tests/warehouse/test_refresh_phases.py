"""bench.refresh_phases times an incremental build and publish phase by phase, then points readers back at the
version it started from and deletes what it published, so the same month can be measured again."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_refresh_phases_times_a_build_and_rolls_it_back(tiny_published, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_published, root, symlinks=True)
    # the pointer and the version records name their files by absolute path, which serving prefers while it exists:
    # point them at the copy, or a publication in the copy could retire the shared root's files
    for rec in [root / "warehouse" / "CURRENT", *(root / "warehouse" / "versions").glob("*.json")]:
        rec.write_text(rec.read_text(encoding="utf-8").replace(str(tiny_published), str(root)), encoding="utf-8")
    shared_before = sorted(p.name for p in (tiny_published / "warehouse" / "versions").iterdir())
    pointer = root / "warehouse" / "CURRENT"
    before = pointer.read_text(encoding="utf-8")
    files_before = sorted(p.name for p in (root / "warehouse" / "versions").iterdir())
    out = tmp_path / "phases.json"
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(root)}
    subprocess.run([sys.executable, "-m", "bench.refresh_phases", "--label", "t", "--json", str(out)],
                   check=True, env=env, cwd=REPO_ROOT, capture_output=True, timeout=600)
    res = json.loads(out.read_text(encoding="utf-8"))
    # nothing was ingested since the base version: an incremental build that restates no month
    assert res["base_version"] == json.loads(before)["version"] != res["version"]
    assert res["build"].startswith("tăng dần")
    phases = res["phases_s"]
    for phase in ("run_dbt", "set_lookup_indexes", "serving.make_analyst_copy", "serving.publish",
                  "finish_and_publish", "prepare_build"):
        assert phases[phase] > 0, phase
    # the phases nest inside the build: dbt and the publication each less than the whole
    assert phases["run_dbt"] + phases["finish_and_publish"] <= res["wall_s"]
    assert res["dbt_models_s"] > 0 and res["dbt_tests_s"] > 0 and res["dbt_nodes"] > 100
    assert all(n.startswith(("model.", "test.", "seed.", "snapshot.")) for n, _ in res["slowest_nodes"])
    assert res["file_bytes"] and all(v > 0 for v in res["file_bytes"].values())
    # rolled back: readers see the base version again, the new version's files are gone
    assert pointer.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in (root / "warehouse" / "versions").iterdir()) == files_before
    assert sorted(p.name for p in (tiny_published / "warehouse" / "versions").iterdir()) == shared_before
