"""The benchmark shapes on DBOS Transact with its SQLite system database.

`python dbos_shapes.py SHAPE SIZE DB MARK` prints one JSON line: {"seconds", "rssMb"}.
Steps are DBOS steps inside one workflow (each step's result is recorded before the next);
parallel branches are async steps gathered on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

from dbos import DBOS

shape, size, db, mark = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
DBOS(config={"name": "ax-bench", "system_database_url": f"sqlite:///{db}"})


@DBOS.step()
def noop(i: int) -> str:
    return "ok"


@DBOS.step()
async def anoop(i: int) -> str:
    return "ok"


@DBOS.step()
async def asleep(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@DBOS.step()
def record_start() -> str:
    with open(mark, "a", encoding="utf-8") as handle:
        handle.write(f"{time.time()}\n")
    return "marked"


@DBOS.workflow()
def chain(n: int) -> None:
    for i in range(n):
        noop(i)


@DBOS.workflow()
async def fanout(width: int) -> None:
    await anoop(-1)
    await asyncio.gather(*(anoop(i) for i in range(width)))
    await anoop(-2)


@DBOS.workflow()
async def diamond() -> None:
    await anoop(0)

    async def c_then_d() -> None:
        await asleep(0.1)
        await asleep(1.0)

    await asyncio.gather(asleep(1.0), c_then_d())
    await anoop(1)


@DBOS.workflow()
def first() -> None:
    record_start()


def main() -> None:
    DBOS.launch()
    start = time.perf_counter()
    if shape == "chain":
        chain(size)
    elif shape == "fanout":
        asyncio.run(fanout(size))
    elif shape == "diamond":
        asyncio.run(diamond())
    elif shape == "first":
        first()
    else:
        raise SystemExit(f"unknown shape {shape}")
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    DBOS.destroy()
    print(json.dumps({"seconds": seconds, "rssMb": rss}))


if __name__ == "__main__":
    main()
