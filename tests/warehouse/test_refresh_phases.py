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
    # a copy: its records still name the shared root's files, but serving reads and retires the copy's own
    # (test_serving::test_a_copied_data_root_reads_and_retires_its_own_files); the shared root is checked below
    shutil.copytree(tiny_published, root, symlinks=True)
    shared_before = sorted(p.name for p in (tiny_published / "warehouse" / "versions").iterdir())
    pointer = root / "warehouse" / "CURRENT"
    before = pointer.read_text(encoding="utf-8")
    files_before = sorted(p.name for p in (root / "warehouse" / "versions").iterdir())
    out = tmp_path / "phases.json"
    env = {**os.environ, "DOANVIEN_DATA_DIR": str(root)}
    saved = tmp_path / "saved" / "published.duckdb"
    subprocess.run([sys.executable, "-m", "bench.refresh_phases", "--label", "t", "--json", str(out),
                    "--save-copy", str(saved)],
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
    assert json.loads(pointer.read_text(encoding="utf-8"))["version"] == json.loads(before)["version"]
    assert sorted(p.name for p in (root / "warehouse" / "versions").iterdir()) == files_before
    assert sorted(p.name for p in (tiny_published / "warehouse" / "versions").iterdir()) == shared_before
    # the published file was kept where --save-copy said, and a build that restated no month (nothing ingested since
    # the base) left every compared table as the base has it (the per-person tables kept in place included)
    from pipelines.generate.verify import version_differences
    base_file = root / "warehouse" / "versions" / f"{res['base_version']}.duckdb"
    diffs = version_differences(saved, base_file)
    assert len(diffs) > 20 and set(diffs.values()) == {(0, 0)}, diffs
