import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from derms.bus import Bus, MemoryBus, Message, subject_matches
from derms.bus.nats import NatsBus
from tests.conftest import NATS_URL


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("telemetry.>", "telemetry.sim", True),
        ("telemetry.>", "telemetry", False),
        ("telemetry.*", "telemetry.sim.x", False),
        ("der.status.*", "der.status.ocpp", True),
        ("a.b", "a.b", True),
        ("a.*.c", "a.x.c", True),
    ],
)
def test_subject_matching(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        async with MemoryBus() as b:
            yield b
        return
    b = NatsBus(NATS_URL, prefix=f"test{uuid.uuid4().hex[:10]}")
    try:
        await b.start()
    except Exception as exc:
        pytest.skip(f"NATS JetStream at {NATS_URL} is not reachable: {exc!r}")
    try:
        yield b
    finally:
        await b.delete_stream()
        await b.close()


async def collect(bus: Bus, pattern: str, n: int, publish: list[tuple[str, object]]) -> list[Message]:
    got: list[Message] = []
    done = asyncio.Event()

    async def handler(message: Message) -> None:
        got.append(message)
        if len(got) >= n:
            done.set()

    sub = await bus.subscribe(pattern, handler)
    for subject, data in publish:
        await bus.publish(subject, data)
    await asyncio.wait_for(done.wait(), timeout=10)
    await sub.unsubscribe()
    return got


async def test_publish_subscribe_in_order_with_wildcards(bus: Bus) -> None:
    messages = [(f"telemetry.p{i % 2}", {"seq": i, "values": [1.5, None]}) for i in range(20)]
    got = await collect(bus, "telemetry.>", 20, [*messages, ("other.x", {"seq": -1})])
    assert [m.data["seq"] for m in got] == list(range(20))
    assert got[3].subject == "telemetry.p1" and got[3].data["values"] == [1.5, None]
    assert got[0].published_at.tzinfo is not None


async def test_failing_handler_does_not_stop_subscription(bus: Bus) -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def flaky(message: Message) -> None:
        if message.data == 1:
            raise RuntimeError("boom")
        seen.append(message.data)
        if message.data == 3:
            done.set()

    sub = await bus.subscribe("x.y", flaky)
    for i in range(4):
        await bus.publish("x.y", i)
    await asyncio.wait_for(done.wait(), timeout=10)
    await sub.unsubscribe()
    assert seen == [0, 2, 3]


async def test_invalid_subjects_are_refused(bus: Bus) -> None:
    with pytest.raises(ValueError):
        await bus.publish("telemetry.*", {})
    with pytest.raises(ValueError):
        await bus.publish("bad subject", {})


@pytest.mark.nats
async def test_durable_consumer_resumes_after_restart() -> None:
    prefix = f"test{uuid.uuid4().hex[:10]}"
    first = NatsBus(NATS_URL, prefix=prefix)
    try:
        await first.start()
    except Exception as exc:
        pytest.skip(f"NATS JetStream at {NATS_URL} is not reachable: {exc!r}")
    try:
        for i in range(3):
            await first.publish("telemetry.sim", i)
        got: list[int] = []
        done = asyncio.Event()

        async def handler(message: Message) -> None:
            got.append(message.data)
            if len(got) == 3:
                done.set()

        second = NatsBus(NATS_URL, prefix=prefix)
        await second.start()
        await second.subscribe("telemetry.>", handler, durable="writer")
        await asyncio.wait_for(done.wait(), timeout=10)
        assert got == [0, 1, 2]  # published before the consumer existed, still delivered
        await second.close()
    finally:
        await first.delete_stream()
        await first.close()
