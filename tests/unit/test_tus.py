"""TUS arithmetic, URL derivation and error classification, without a server."""

from __future__ import annotations

import base64

import pytest

from utils.supabase.tus import (
    Failure,
    chunk_length,
    explain,
    object_url,
    parse_offset,
    read_failure,
    request_timeouts,
    retry_delay,
    storage_urls,
    upload_metadata,
)

MiB = 1024 * 1024


@pytest.mark.parametrize("given", ["https://abcd.supabase.co", "https://abcd.supabase.co/",
                                   "https://abcd.storage.supabase.co", "https://abcd.supabase.co/storage/v1"])
def test_hosted_urls_send_resumable_uploads_to_the_direct_storage_host(given: str) -> None:
    urls = storage_urls(given)
    assert urls.resumable == "https://abcd.storage.supabase.co/storage/v1/upload/resumable"
    assert urls.rest in ("https://abcd.supabase.co/storage/v1", "https://abcd.storage.supabase.co/storage/v1")
    assert urls.rest == ("https://abcd.storage.supabase.co/storage/v1" if ".storage." in given
                         else "https://abcd.supabase.co/storage/v1")


@pytest.mark.parametrize("given", ["http://127.0.0.1:5999", "http://127.0.0.1:5999/storage/v1/"])
def test_local_urls_are_used_as_given_plus_storage_v1(given: str) -> None:
    urls = storage_urls(given)
    assert urls.rest == "http://127.0.0.1:5999/storage/v1"
    assert urls.resumable == "http://127.0.0.1:5999/storage/v1/upload/resumable"


def test_object_urls_are_percent_encoded_but_keep_folders() -> None:
    assert object_url("http://h/storage/v1", "object/info", "b", "u 1/j#2/x.mp4") == \
        "http://h/storage/v1/object/info/b/u%201/j%232/x.mp4"


def test_upload_metadata_is_base64_pairs() -> None:
    header = upload_metadata("media-outputs", "u/j/video.mp4", "video/mp4")
    pairs = dict(item.split(" ") for item in header.split(","))
    assert {k: base64.b64decode(v).decode() for k, v in pairs.items()} == {
        "bucketName": "media-outputs", "objectName": "u/j/video.mp4", "contentType": "video/mp4",
        "cacheControl": "3600"}


def test_chunks_start_at_the_servers_offset_even_mid_chunk() -> None:
    assert chunk_length(0, 20 * MiB, 6 * MiB) == 6 * MiB
    assert chunk_length(6 * MiB + 1, 20 * MiB, 6 * MiB) == 6 * MiB
    assert chunk_length(18 * MiB + 7, 20 * MiB, 6 * MiB) == 2 * MiB - 7
    assert chunk_length(20 * MiB, 20 * MiB, 6 * MiB) == 0
    with pytest.raises(ValueError):
        chunk_length(20 * MiB + 1, 20 * MiB, 6 * MiB)


@pytest.mark.parametrize("header", [None, "", "-1", "abc", "101"])
def test_bad_upload_offsets_are_refused(header: str | None) -> None:
    with pytest.raises(ValueError):
        parse_offset(header, 100)
    assert parse_offset("37", 100) == 37


def test_rest_errors_are_classified_by_the_body_not_the_http_400() -> None:
    body = '{"statusCode":"413","error":"Payload too large","message":"too big","code":"EntityTooLarge"}'
    failure = read_failure(400, body)
    assert (failure.status, failure.code, failure.retryable) == (413, "EntityTooLarge", False)
    assert read_failure(400, '{"statusCode":"403","code":"AccessDenied","message":"x"}').status == 403
    assert read_failure(400, '{"statusCode":"409","code":"KeyAlreadyExists","message":"x"}').retryable


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (502, True), (503, True), (409, True), (429, True),
                                                   (400, False), (401, False), (403, False), (413, False),
                                                   (415, False), (404, False)])
def test_tus_plain_text_errors_keep_their_status(status: int, retryable: bool) -> None:
    failure = read_failure(status, "Maximum size exceeded")
    assert failure.status == status and failure.retryable is retryable and failure.message == "Maximum size exceeded"


def test_messages_say_what_to_change() -> None:
    too_big = explain(Failure(413, "", "Maximum size exceeded"), "upload", "media-outputs", 3 * 1024**3)
    assert "3.0 GB" in too_big and "file_size_limit" in too_big and "global upload limit" in too_big
    assert "allowed_mime_types" in explain(Failure(415, "InvalidMimeType", "no"), "upload", "b")
    assert "SUPABASE_SERVICE_ROLE_KEY" in explain(Failure(403, "AccessDenied", "bad jwt"), "upload", "b")
    assert "migrations" in explain(Failure(404, "NoSuchBucket", "Bucket not found"), "upload", "b")


def test_timeouts_derive_from_the_upload_timeout() -> None:
    assert request_timeouts(600) == (10.0, 60.0)
    assert request_timeouts(10) == (1.0, 1.0)


def test_retry_delay_grows_and_honours_retry_after() -> None:
    assert 0.5 <= retry_delay(1, None) <= 1.0
    assert 2.0 <= retry_delay(3, None) <= 4.0
    assert retry_delay(1, "7") == 7.0


def test_the_overall_deadline_grows_with_the_file() -> None:
    from utils.supabase.tus import transfer_seconds

    assert transfer_seconds(600, 0) == 600
    # a 2 GiB output gets 600 s plus 2048 s: a slow but moving link is not cut off at 600 s
    assert transfer_seconds(600, 2 * 1024**3) == 600 + 2048


def test_a_gateways_html_error_page_is_named_by_its_title_and_retried() -> None:
    page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center>nginx</center></body></html>"
    failure = read_failure(502, page)
    assert (failure.status, failure.message, failure.retryable) == (502, "502 Bad Gateway", True)
    assert read_failure(500, " plain words \n").message == "plain words"
