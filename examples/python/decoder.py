"""decoder.py - an actor written in Python (examples/python/job.yaml).

A toy "decoder": step() answers at once, tokens() streams its reply chunk
by chunk, generate() is an async def served on the worker's asyncio loop
(a deferred reply: the worker goes on serving other callers meanwhile).
spoke-worker-python imports this module from the job file's directory and
serves the class; CUDA_VISIBLE_DEVICES holds the actor's GPUs before
Python starts, so a framework imported here sees only those."""

import asyncio
import os

import spoke

STEP, TOKENS, GENERATE, INFO = 1, 2, 3, 4


@spoke.actor("Decoder")
class Decoder:
    def __init__(self, args: bytes):
        # The job file's args: a string, packed (u32 length, then the bytes).
        n = int.from_bytes(args[:4], "little") if len(args) >= 4 else 0
        self.repeat = int(args[4:4 + n] or b"1")
        self.gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")

    @spoke.method(STEP)
    def step(self, req: memoryview) -> bytes:
        return bytes(req).upper() * self.repeat

    @spoke.method(TOKENS)
    def tokens(self, req: memoryview):
        for word in bytes(req).split():
            yield word                      # one chunk each

    @spoke.method(GENERATE)
    async def generate(self, req: memoryview) -> bytes:
        prompt = bytes(req)                 # req is valid until the reply
        await asyncio.sleep(0.01)           # an engine's step would go here
        return b"generated from " + prompt

    @spoke.method(INFO)
    def info(self, req):
        return ("pid %d gpus %s" % (os.getpid(), self.gpus)).encode()
