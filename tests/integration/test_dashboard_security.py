"""The dashboard's access rules over plain HTTP: CSRF on every action, the token off loopback, and files
served only from inside the outputs bucket."""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from tests.storage_server import StorageServer
from tests.support.dashboard import request, running_dashboard
from tests.support.workers import insert_job, job_row, put_local_object, run_cli, worker_env

TOKEN = "a-long-enough-dashboard-token"


def csrf_of(base: str, path: str) -> tuple[str, str]:
    """The confirmation form's CSRF field and the cookie the page set."""
    status, body, headers = request(base + path)
    assert status == 200, body
    field = re.search(r'name="csrf" value="([^"]+)"', body)
    cookie = re.search(r"mw_csrf=([^;]+)", headers.get("set-cookie", ""))
    assert field and cookie
    return field.group(1), cookie.group(1)


def test_a_post_without_the_csrf_token_is_refused(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    job_id = insert_job(db_url, "media.probe", {}, status="failed", error="boom")
    with running_dashboard(worker_env(db_url, data_dir), tmp_path / "dashboard.log") as base:
        field, cookie = csrf_of(base, f"/jobs/{job_id}/retry")
        for form, headers in (({}, {"Cookie": f"mw_csrf={cookie}"}),                       # no field
                              ({"csrf": field}, {}),                                       # no cookie
                              ({"csrf": "forged"}, {"Cookie": "mw_csrf=forged"})):         # a guess
            status, body, _ = request(f"{base}/jobs/{job_id}/retry", urlencode(form).encode(), headers)
            assert status == 403 and "CSRF" in body
            status, _, _ = request(f"{base}/actions/retry-failed", urlencode(form).encode(), headers)
            assert status == 403
        assert job_row(db_url, job_id)["status"] == "failed"
        status, _, headers = request(f"{base}/jobs/{job_id}/retry", urlencode({"csrf": field}).encode(),
                                     {"Cookie": f"mw_csrf={cookie}"})
        assert status == 303 and headers["location"].endswith("notice=retried")
    assert job_row(db_url, job_id)["status"] == "pending"


def test_it_refuses_to_start_off_loopback_without_a_token(db_url: str, data_dir: Path) -> None:
    env = worker_env(db_url, data_dir, DASHBOARD_HOST="0.0.0.0")
    proc = run_cli(["dashboard"], env, timeout=60, check=False)
    assert proc.returncode == 2
    assert "DASHBOARD_HOST=0.0.0.0" in proc.stderr and "DASHBOARD_TOKEN" in proc.stderr
    proc = run_cli(["dashboard"], {**env, "DASHBOARD_TOKEN": "short"}, timeout=60, check=False)
    assert proc.returncode == 2 and "at least 16 characters" in proc.stderr


def test_with_a_token_every_page_needs_it(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    env = worker_env(db_url, data_dir, DASHBOARD_TOKEN=TOKEN)
    with running_dashboard(env, tmp_path / "dashboard.log") as base:
        for path in ("/", "/jobs", "/workers", "/files/media-outputs/x.jpg"):
            status, _, headers = request(base + path)
            assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert request(base + "/", headers={"Authorization": "Bearer wrong-token-of-some-length"})[0] == 401
        assert request(base + "/", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        basic = base64.b64encode(f"operator:{TOKEN}".encode()).decode()
        status, body, _ = request(base + "/jobs", headers={"Authorization": f"Basic {basic}"})
        assert status == 200 and TOKEN not in body
    assert TOKEN not in (tmp_path / "dashboard.log").read_text()


def test_files_are_served_only_from_inside_the_outputs_bucket(db_url: str, data_dir: Path, tmp_path: Path) -> None:
    put_local_object(data_dir, "media-outputs", "anonymous/job/poster.jpg", b"\xff\xd8jpeg")
    put_local_object(data_dir, "media-uploads", "anonymous/private.mp4", b"private")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (data_dir / "storage" / "media-outputs" / "anonymous" / "link.txt").symlink_to(secret)
    with running_dashboard(worker_env(db_url, data_dir), tmp_path / "dashboard.log") as base:
        status, body, headers = request(base + "/files/media-outputs/anonymous/job/poster.jpg")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        for path in ("media-outputs/anonymous/link.txt", "media-uploads/anonymous/private.mp4",
                     "media-outputs/anonymous/%2e%2e/%2e%2e/media-uploads/anonymous/private.mp4",
                     "media-outputs/anonymous/job/missing.jpg"):
            status, body, _ = request(f"{base}/files/{path}")
            assert status == 404 and "outside" not in body and "private" not in body[:7], path


def test_with_supabase_storage_a_file_link_redirects_to_a_signed_url(db_url: str, data_dir: Path,
                                                                     tmp_path: Path) -> None:
    key = "service-role-key-for-the-test"
    server = StorageServer(key).start()
    try:
        server.add_bucket("media-outputs", 2 * 1024**3, ["image/jpeg"])
        server.put_object("media-outputs", "anonymous/job/poster.jpg", b"\xff\xd8jpeg")
        result = {"outputs": [{"kind": "poster", "bucket": "media-outputs", "path": "anonymous/job/poster.jpg",
                               "content_type": "image/jpeg", "size": 6}]}
        job_id = insert_job(db_url, "video.process", {}, status="completed", result=json.dumps(result))
        env = {k: v for k, v in worker_env(db_url, data_dir, SUPABASE_URL=server.url,
                                           SUPABASE_SERVICE_ROLE_KEY=key).items() if k != "STORAGE_BACKEND"}
        with running_dashboard(env, tmp_path / "dashboard.log") as base:
            status, body, _ = request(f"{base}/jobs/{job_id}")
            assert status == 200 and 'src="/files/media-outputs/anonymous/job/poster.jpg"' in body and key not in body
            status, _, headers = request(base + "/files/media-outputs/anonymous/job/poster.jpg")
            assert status == 302
            assert "/object/sign/media-outputs/anonymous/job/poster.jpg?token=" in headers["location"]
            assert urllib.request.urlopen(headers["location"], timeout=10).read() == b"\xff\xd8jpeg"
    finally:
        server.close()
