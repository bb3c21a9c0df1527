#!/usr/bin/env python3
"""driver.py - the driver of examples/python/job.yaml: calls the Decoder
actors (decoder.py) that spoke-launch started, in every way they answer."""

import asyncio
import sys

import spoke

STEP, TOKENS, GENERATE, INFO = 1, 2, 3, 4


async def generate_all(actors):
    return await asyncio.gather(*(a.call_async(GENERATE, b"prompt %d" % i)
                                  for i, a in enumerate(actors)))


def main():
    with spoke.Client() as c:
        actors = [c.actor("decoder-%d" % i) for i in range(2)]
        for a in actors:
            print(a.name, a.call(INFO).decode())
            assert a.call(STEP, b"hi") == b"HIHIHI", "step"
            words = list(a.stream(TOKENS, b"the quick brown fox"))
            assert words == [b"the", b"quick", b"brown", b"fox"], words
        print("streamed", len(words), "tokens from each")
        replies = asyncio.run(generate_all(actors))
        assert replies == [b"generated from prompt %d" % i for i in range(2)], replies
        print("generated:", [r.decode() for r in replies])
        try:
            actors[0].call(99)
        except spoke.NoMethod as e:
            print("no method 99:", e.message)
    print("driver: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
