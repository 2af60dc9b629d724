"""A loopback OpenAI-compatible server for the HTTP benchmark, run as its own process.

`python openai_server.py --delay 0.25` prints `PORT <n>` on stdout once it listens, then
answers every `POST /v1/chat/completions` after `--delay` seconds with a streamed (SSE) answer
of a few chunks and a usage chunk, like a real model server. It is asyncio-based so 500
concurrent connections cost it little: the figure should be the orchestrator's, not the
server's. It stops when its standard input closes (the benchmark exits or kills it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

CHUNKS = ["The ", "answer ", "is ", "forty-", "two."]


def _sse_body(model: str) -> bytes:
    events = [
        {"model": model, "choices": [{"index": 0, "delta": {"content": part}}]} for part in CHUNKS
    ]
    events.append(
        {"model": model, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}}
    )
    lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


async def _handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float
) -> None:
    try:
        while True:  # keep-alive: one connection serves many requests
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = json.loads(await reader.readexactly(length)) if length else {}
            if delay_s:
                await asyncio.sleep(delay_s)
            payload = _sse_body(str(body.get("model", "bench-model")))
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                + f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(delay_s: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, delay_s), "127.0.0.1", 0, backlog=2048
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes our stdin
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay", type=float, default=0.25, help="seconds before answering")
    asyncio.run(_serve(parser.parse_args().delay))


if __name__ == "__main__":
    main()
