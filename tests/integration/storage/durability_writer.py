"""Child process for the durability test: write forever, print each acknowledged write.

Usage: ``python durability_writer.py DB_PATH``. Several concurrent writers, so kill -9 lands
while group-commit batches are in flight. A line ``ACK key revision`` is printed (and flushed)
only after the store acknowledged that write.
"""

from __future__ import annotations

import asyncio
import sys

from kubeboot.storage.sqlite import SqliteStore

WRITERS = 8


async def write_forever(path: str) -> None:
    store = await SqliteStore.open(path)

    async def writer(w: int) -> None:
        i = 0
        while True:
            kv = await store.create(f"/d/{w}/{i:08d}", f"value-{w}-{i}".encode() * 20)
            sys.stdout.write(f"ACK {kv.key} {kv.mod_revision}\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))


if __name__ == "__main__":
    asyncio.run(write_forever(sys.argv[1]))
