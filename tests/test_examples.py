"""The programs in examples/ run as they are, against a real server and a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from web_helpers import PASSWORD, make_app, serve_in_thread

EXAMPLES = ROOT / "examples"


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300, **kwargs)


@pytest.fixture
def trail_file(xw, people, tmp_path) -> Path:
    """The API client's run: sign in, start a case, complete its first step, download the trail."""
    out = tmp_path / "trail.json"
    with serve_in_thread(make_app(xw)) as base:
        result = python(str(EXAMPLES / "api_client.py"), "--url", base, "--user", people["party_branch"],
                        "--password", PASSWORD, "--procedure", "V-DEC-01", "--org", "DONGAO", "-o", str(out))
        wrong = python(str(EXAMPLES / "api_client.py"), "--url", base, "--user", people["party_branch"],
                       "--password", "not-the-password", "-o", str(tmp_path / "none.json"))
    assert result.returncode == 0, result.stderr
    assert "completed collect" in result.stdout and "next: propose" in result.stdout
    assert wrong.returncode == 1 and "401" in wrong.stderr and not (tmp_path / "none.json").exists()
    trail = json.loads(out.read_text(encoding="utf-8"))
    assert [e["type"] for e in trail["events"]] == ["case_started", "step_completed"]
    assert trail["events"][1]["actor"] == people["party_branch"]
    return out


def test_api_client_and_offline_verification(trail_file, tmp_path):
    ok = python(str(EXAMPLES / "verify_trail.py"), str(trail_file))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verifies — 2 events" in ok.stdout and "step_completed" in ok.stdout
    tampered = tmp_path / "tampered.json"
    tampered.write_text(trail_file.read_text(encoding="utf-8").replace("村道硬化工程", "村道硬化工程二期"),
                        encoding="utf-8")
    bad = python(str(EXAMPLES / "verify_trail.py"), str(tampered))
    assert bad.returncode == 1 and "does NOT verify" in bad.stdout


def test_new_procedure_from_a_step_table_through_the_cli(tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "XIAOWEI_SCRYPT_N": "16"}
    env.pop("DATABASE_URL", None)  # the script makes its own SQLite database
    result = subprocess.run(["bash", str(EXAMPLES / "new_procedure" / "run.sh"), str(tmp_path / "work")],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "0 with errors" in out and "EX-PUB-01 村务公开栏维修 (v1)" in out
    assert "已办理 repair;事项状态 completed" in out and "已办结" in out
    assert "OK: 6 events verify" in out
    bpmn = (tmp_path / "work" / "procedures" / "EX-PUB-01.bpmn").read_text(encoding="utf-8")
    assert "bpmndi:BPMNShape" in bpmn and "<xw:" in bpmn  # the diagram and Xiaowei's extensions
