import json
import logging

from gatehouse.common.logging import JsonFormatter, redact, request_id_var


def test_tokens_and_passwords_never_reach_a_log_line() -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlLWJ5dGVz"
    text = f'Authorization: Bearer {jwt_like} body={{"password": "hunter2hunter"}}'
    cleaned = redact(text)
    assert jwt_like not in cleaned
    assert "hunter2hunter" not in cleaned
    assert "[redacted" in cleaned


def test_json_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "refresh_token=%s", ("abcdefgh1234",), None
    )
    token = request_id_var.set("req-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-1"
    assert "abcdefgh1234" not in line["message"]
