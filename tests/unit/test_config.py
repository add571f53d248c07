from pathlib import Path

import pytest

from worker.config import Settings, load_settings, markdown_table, mask
from worker.errors import ConfigError


def test_defaults_need_nothing() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.database_url is None
    assert settings.upload_chunk_size_bytes == 6 * 1024 * 1024
    assert settings.worker_concurrency == 1


def test_values_are_typed() -> None:
    settings = load_settings({"WORKER_CONCURRENCY": "4", "WORKER_JOB_TYPES": "video.process, media.probe",
                              "UPLOAD_TIMEOUT_SECONDS": "12.5", "WORKER_TEMP_DIR": "/var/tmp/x"}, env_file=None)
    assert settings.worker_concurrency == 4
    assert settings.worker_job_types == ("video.process", "media.probe")
    assert settings.upload_timeout_seconds == 12.5
    assert settings.worker_temp_dir == Path("/var/tmp/x")


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"WORKER_CONCURRENCY": "zero", "UPLOAD_MAX_RETRIES": "-1", "FFMPEG_HWACCEL": "cuda",
                       "LOG_FORMAT": "xml", "SUPABASE_URL": "https://x.supabase.co"}, env_file=None)
    text = str(info.value)
    for name in ("WORKER_CONCURRENCY", "UPLOAD_MAX_RETRIES", "FFMPEG_HWACCEL", "LOG_FORMAT",
                 "SUPABASE_SERVICE_ROLE_KEY"):
        assert name in text
    assert len(info.value.problems) == 5
    assert "must be one of auto, none, nvenc, vaapi, qsv" in text


def test_heartbeat_must_be_shorter_than_lease() -> None:
    with pytest.raises(ConfigError, match="WORKER_HEARTBEAT_SECONDS"):
        load_settings({"WORKER_HEARTBEAT_SECONDS": "60", "WORKER_LEASE_SECONDS": "30"}, env_file=None)


def test_a_percent_sign_in_the_temp_dir_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="WORKER_TEMP_DIR='/tmp/100%media'.*must not contain '%'"):
        load_settings({"WORKER_TEMP_DIR": "/tmp/100%media"}, env_file=None)


def test_secrets_are_masked_everywhere() -> None:
    secret_key = "eyJhbGciOiJIUzI1NiJ9.super-secret"
    settings = load_settings({"DATABASE_URL": "postgresql://u:hunter2@db:5432/postgres",
                              "SUPABASE_URL": "https://x.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": secret_key,
                              "WEBHOOK_SECRET": "whsec_c2VjcmV0c2VjcmV0"}, env_file=None)
    shown = repr(settings) + str(settings.describe())
    assert "hunter2" not in shown and secret_key not in shown and "c2VjcmV0c2VjcmV0" not in shown
    assert "postgresql://u:***@db:5432/postgres" in shown
    with pytest.raises(ConfigError) as info:
        load_settings({"DATABASE_URL": "mysql://u:hunter2@db/x"}, env_file=None)
    assert "hunter2" not in str(info.value)


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WORKER_CONCURRENCY=3\nVIDEO_CRF=30\n")
    settings = load_settings({"VIDEO_CRF": "20"}, env_file=str(env_file))
    assert settings.worker_concurrency == 3
    assert settings.video_crf == 20


def test_markdown_table_lists_every_variable() -> None:
    table = markdown_table()
    for name in Settings().describe():
        assert f"`{name}`" in table


def test_mask() -> None:
    assert mask("abc") == "***"
    assert mask(None) == ""
