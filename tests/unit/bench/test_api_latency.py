import asyncio
import json

import pytest
from fastapi import FastAPI, Request
from pydantic import SecretStr

from bench.api_latency import asgi_post, bench_settings, percentile, report, summarise
from loop.settings import ApiSettings, Settings


def test_percentiles_interpolate_between_the_timings() -> None:
    timings = [float(i) for i in range(1, 101)]
    assert percentile(timings, 50) == pytest.approx(50.5)
    assert percentile(timings, 99) == pytest.approx(99.01)
    assert percentile([], 50) == 0.0


def test_what_the_api_adds_is_the_median_of_the_paired_differences() -> None:
    raw = [0.010, 0.020, 0.030, 0.040, 0.050]
    api = [0.0115, 0.0210, 0.0320, 0.0415, 0.0900]  # one slow request
    result = summarise(raw, api, "v0001", "patterns", ([0.01, 0.02], [0.0105, 0.0212]))
    assert result.requests == 5
    assert result.raw_p50_ms == pytest.approx(30.0)
    assert result.api_p50_ms == pytest.approx(32.0)
    assert result.added_p50_ms == pytest.approx(1.5)  # not 32.0 - 30.0
    assert result.added_p99_ms == pytest.approx(38.48)  # 2 + 0.96 * (40 - 2)
    assert result.added_cpu_p50_ms == pytest.approx(0.85)  # median of 0.5 and 1.2
    assert result.model_version == "v0001"
    assert result.entity_version == "patterns"
    assert report(result).splitlines()[-1].startswith('{"requests": 5')
    assert "target p50 <= 2 ms: met" in report(result)


def test_unpaired_timings_are_refused() -> None:
    with pytest.raises(ValueError, match="2 raw timings but 1 api"):
        summarise([0.1, 0.2], [0.1], "v0001", None)


def test_the_in_process_app_asks_the_bench_key_and_listens_to_no_broker() -> None:
    settings = Settings(api=ApiSettings(keys=[SecretStr("k" * 32)]))
    quiet = bench_settings(settings, "bench-key")
    assert [key.get_secret_value() for key in quiet.api.keys] == ["bench-key"]
    assert quiet.kafka.model_events is False
    assert [key.get_secret_value() for key in settings.api.keys] == ["k" * 32]  # left alone


def test_a_post_reaches_the_app_as_a_server_would_send_it() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {
            "body": await request.json(),
            "key": request.headers.get("x-api-key"),
            "length": request.headers.get("content-length"),
        }

    body = b'{"text": "$AAPL up"}'
    status, answer = asyncio.run(asgi_post(app, "/echo", body, [(b"x-api-key", b"k1")]))
    assert status == 200
    assert json.loads(answer) == {"body": {"text": "$AAPL up"}, "key": "k1", "length": "20"}
    assert asyncio.run(asgi_post(app, "/nowhere", body))[0] == 404
