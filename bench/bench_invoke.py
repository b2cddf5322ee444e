"""2b. Invoke latency: ``Endpoint.invoke`` against a plain ``requests`` POST to the same serving container.

One endpoint of the sample image (``Endpoint(...)``, InService) and, in the same process, a
``requests.Session`` posting to the container's published port directly. The two are interleaved request by
request (emulator, plain, emulator, plain, ...) with the same one-row CSV body, so drift falls on both alike.
The figure is the median round trip and its 95th percentile; the difference is what the emulator's
InvokeEndpoint adds (header checks, the 6 MB limit, the response shape) on top of an HTTP POST.
"""

from __future__ import annotations

from bench._common import (
    SAMPLE_IMAGE,
    Options,
    Result,
    Row,
    ensure_sample_image,
    median,
    now,
    percentile,
    sample_model,
)

BODY = b"5.1,3.5,1.4,0.2\n"
HEADERS = {"Content-Type": "text/csv", "Accept": "text/csv"}


def run(opts: Options) -> Result:
    import requests

    from emulator.config import EmulatorConfig
    from emulator.serving import Endpoint

    ensure_sample_image()
    _, model_tar = sample_model(opts.work)
    count = 100 if opts.quick else 500
    emulator: list[float] = []
    plain: list[float] = []
    with Endpoint(SAMPLE_IMAGE, model_data=str(model_tar), config=EmulatorConfig(stream_logs=False)) as ep:
        session = requests.Session()
        url = f"http://127.0.0.1:{ep.port}/invocations"
        for i in range(count + 20):  # the first 20 pairs warm both clients up and are left out
            t0 = now()
            answer = ep.invoke(BODY, content_type="text/csv", accept="text/csv")
            t1 = now()
            response = session.post(url, data=BODY, headers=HEADERS, timeout=30)
            t2 = now()
            if answer["Body"] != response.content or response.status_code != 200:
                raise RuntimeError(f"the two answers differ: {answer['Body']!r} / {response.content!r}")
            if i >= 20:
                emulator.append(t1 - t0)
                plain.append(t2 - t1)
        session.close()
    emu_ms, plain_ms = [t * 1e3 for t in emulator], [t * 1e3 for t in plain]
    result = Result("invoke")
    result.rows.append(
        Row(
            "2b. invoke latency",
            "`Endpoint.invoke` round trip, one CSV row (median)",
            "plain `requests` POST, same container",
            median(plain_ms),
            median(emu_ms),
            "ms",
            "excess < 1 ms",
            median(emu_ms) - median(plain_ms) < 1.0,
            count,
            f"median emulator {median(emu_ms):.2f} ms, plain {median(plain_ms):.2f} ms "
            f"({median(emu_ms) - median(plain_ms):+.2f} ms); p95 {percentile(emu_ms, 95):.2f} / "
            f"{percentile(plain_ms, 95):.2f} ms; min {min(emu_ms):.2f} / {min(plain_ms):.2f} ms",
        )
    )
    result.details.append(
        f"**Invoke latency.** {count} pairs of requests, interleaved one by one against one sample endpoint "
        "(gunicorn, 2 workers): `Endpoint.invoke(body, content_type=..., accept=...)` against "
        "`requests.Session().post` to the same published port. The emulator's figure includes its InvokeEndpoint "
        "checks and the response shape (`Body`, `ContentType`, `InvokedProductionVariant`)."
    )
    return result
