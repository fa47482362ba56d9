import asyncio

import pytest

from derms.core.tasks import cancel_and_wait


async def test_cancel_and_wait_stops_every_task_and_skips_none() -> None:
    sleepers = [asyncio.create_task(asyncio.sleep(60)) for _ in range(3)]
    await cancel_and_wait(sleepers[0], None, *sleepers[1:])
    assert all(t.cancelled() for t in sleepers)


async def test_cancel_and_wait_propagates_other_errors() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait(task)
