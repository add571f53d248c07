from pathlib import Path

import pytest

from worker.config import Settings, load_settings, markdown_table, mask, storage_refusal
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
                       "LOG_FORMAT": "xml", "SUPABASE_URL": "https://x.supabase.co",
                       "DATABASE_URL": "postgresql://db/postgres"}, env_file=None)
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


def test_a_bad_value_from_the_env_file_says_so_and_names_the_type(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("WORKER_CONCURRENCY=four\nVIDEO_CRF=2.5\nUPLOAD_TIMEOUT_SECONDS=soon\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"VIDEO_CRF": "x"}, env_file=str(env_file))
    assert info.value.problems == [
        f"WORKER_CONCURRENCY='four' (from {env_file}): must be an integer",
        f"UPLOAD_TIMEOUT_SECONDS='soon' (from {env_file}): must be a number",
        "VIDEO_CRF='x': must be an integer",  # the environment's value, which wins over .env
    ]


def test_infinite_and_out_of_range_numbers_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"WORKER_LEASE_SECONDS": "inf", "WORKER_CONCURRENCY": "65"}, env_file=None)
    assert sorted(info.value.problems) == ["WORKER_CONCURRENCY='65': must be at most 64",
                                           "WORKER_LEASE_SECONDS='inf': must be a finite number"]


def test_supabase_without_a_database_url_is_refused_with_where_to_find_it() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"SUPABASE_URL": "https://x.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "k"}, env_file=None)
    (problem,) = info.value.problems
    assert problem.startswith("DATABASE_URL: required when SUPABASE_URL is set")
    assert "session pooler on port 5432" in problem and "6543" in problem


def test_a_database_url_without_supabase_needs_local_storage_asked_for() -> None:
    alone = load_settings({"DATABASE_URL": "postgresql://db/postgres"}, env_file=None)
    refusal = storage_refusal(alone)
    assert refusal is not None and "STORAGE_BACKEND=local" in str(refusal)
    local = load_settings({"DATABASE_URL": "postgresql://db/postgres", "STORAGE_BACKEND": "local"}, env_file=None)
    assert storage_refusal(local) is None and local.local_storage
    with pytest.raises(ConfigError, match="SUPABASE_URL: required when STORAGE_BACKEND=supabase"):
        load_settings({"DATABASE_URL": "postgresql://db/postgres", "STORAGE_BACKEND": "supabase"}, env_file=None)


def test_nothing_configured_is_the_embedded_demo() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.embedded_database and settings.local_storage and storage_refusal(settings) is None
    remote = load_settings({"DATABASE_URL": "postgresql://db/postgres", "SUPABASE_URL": "https://x.supabase.co",
                            "SUPABASE_SERVICE_ROLE_KEY": "k"}, env_file=None)
    assert not remote.embedded_database and not remote.local_storage and storage_refusal(remote) is None


def test_a_retention_that_is_not_positive_says_so() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"UPLOAD_RETENTION_HOURS": "0"}, env_file=None)
    assert info.value.problems == ["UPLOAD_RETENTION_HOURS='0': must be more than 0"]
