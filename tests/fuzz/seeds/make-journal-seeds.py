#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seeds of tests/fuzz/corpus/journal (fuzz-journal.c
explains the input format; src/journal.h the record bodies):

    tests/fuzz/seeds/make-journal-seeds.py tests/fuzz/corpus/journal
"""
import os
import random
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rnd = random.Random(20261122)
PAD, TASKS, SET, END, QUEUE, GENS, CKPT_BEGIN, CKPT_END = range(1, 9)
READY, DELAYED, DEAD = 1, 2, 3
RAW, STRUCT, REPLAY, HDR = 0, 1, 2, 4


def seed(name, mode, body):
    with open(os.path.join(out, 'seed-' + name), 'wb') as f:
        f.write(bytes([mode]) + bytes(body))


def rec(rtype, n, body):
    return struct.pack('<HHI', rtype, len(body), n) + bytes(body)


def task(idx, gen=1, where=READY, queue=0, level=0, attempts=0, max_attempts=3,
         payload=b'', due=0):
    return struct.pack('<QQQBBBBBBHII', gen << 32 | idx, 1, due, where, queue, level,
                       attempts, max_attempts, 0, 7, 30000, len(payload)) + \
        payload + bytes(-len(payload) % 8)


def tset(idx, gen=1, where=READY, level=0, attempts=1, due=0):
    return struct.pack('<QQBBB5x', gen << 32 | idx, due, where, level, attempts)


def queue(index, name, paused=0):
    qc = struct.pack('<4I', 0, 30000, 3, 1) + bytes(64 * 4) + struct.pack('<4I', 0, 0, 0, 0)
    return struct.pack('<II', index, paused) + name.ljust(48, b'\0')[:48] + qc


two = task(1, payload=b'hello') + task(2, queue=1, level=1, payload=bytes(range(100)))
seed('tasks', STRUCT | REPLAY, rec(TASKS, 2, two))
seed('tasks-scan-only', STRUCT, rec(TASKS, 2, two))
seed('queue-tasks', STRUCT | REPLAY,
     rec(QUEUE, 1, queue(0, b'a')) + rec(QUEUE, 1, queue(1, b'b', 1)) + rec(TASKS, 2, two))
seed('tasks-set-end', STRUCT | REPLAY,
     rec(TASKS, 3, two + task(3, where=DELAYED, due=1 << 62)) +
     rec(SET, 2, tset(1, where=DEAD) + tset(2, level=0)) + rec(END, 1, struct.pack('<Q', 1 << 32 | 3)))
seed('gens', STRUCT | REPLAY, rec(GENS, 4, struct.pack('<II4I', 0, 0, 5, 6, 7, 8)) + rec(TASKS, 1, task(0, gen=9)))
seed('checkpoint', STRUCT | REPLAY,
     rec(TASKS, 1, task(5)) + rec(CKPT_BEGIN, 0, b'') + rec(TASKS, 2, two) +
     rec(CKPT_END, 0, struct.pack('<Q', 4096 + 24 + 48)))
seed('pad', STRUCT | REPLAY, rec(PAD, 0, bytes(40)) + rec(TASKS, 1, task(4)))
seed('tasks-n-too-big', STRUCT | REPLAY, rec(TASKS, 1000, two))
seed('set-n-too-big', STRUCT | REPLAY, rec(SET, 0xffffffff, tset(1)))
seed('end-unknown', STRUCT | REPLAY, rec(END, 2, struct.pack('<QQ', 7 << 32 | 63, 0xffffffffffffffff)))
seed('task-bad-fields', STRUCT | REPLAY,
     rec(TASKS, 3, task(64) + task(1, queue=200, level=9, where=9) + task(2, gen=0, payload=b'x' * 3000)))
seed('task-len-past-body', STRUCT | REPLAY, rec(TASKS, 1, task(1, payload=b'abc')[:-8] + struct.pack('<I', 1 << 20)))
seed('gens-past-capacity', STRUCT | REPLAY, rec(GENS, 100, struct.pack('<II', 60, 0) + bytes(400)))
seed('queue-bad', STRUCT | REPLAY, rec(QUEUE, 1, queue(300, b'x' * 48, 7)))
seed('unknown-type', STRUCT | REPLAY, rec(99, 1, bytes(16)) + rec(0, 0, b''))
seed('same-slot-twice', STRUCT | REPLAY, rec(TASKS, 1, task(1, gen=2)) + rec(TASKS, 1, task(1, gen=1)) +
     rec(END, 1, struct.pack('<Q', 2 << 32 | 1)))
seed('header-damaged', STRUCT | REPLAY | HDR, b'TQJOURN2' + bytes(8) + rec(TASKS, 2, two))
seed('raw-empty', RAW | REPLAY, b'')
seed('raw-zeros', RAW | REPLAY, bytes(512))
seed('raw-garbage', RAW | REPLAY, bytes(rnd.getrandbits(8) for _ in range(600)))
seed('raw-scan-garbage', RAW, bytes(rnd.getrandbits(8) for _ in range(2000)))
seed('raw-len-only', RAW | REPLAY, struct.pack('<IIQ', 24, 0, 4096) + bytes(16))
