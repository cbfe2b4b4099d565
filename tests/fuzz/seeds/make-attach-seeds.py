#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seeds of tests/fuzz/corpus/attach (fuzz-attach.c
explains the input format). Needs the template's header page:

    FUZZ_ATTACH_HEADER=/tmp/hdr.bin build/tests/fuzz/fuzz-replay-attach /dev/null
    tests/fuzz/seeds/make-attach-seeds.py /tmp/hdr.bin tests/fuzz/corpus/attach

The fuzzer's own finds are added to the same directory with -merge=1."""
import os
import random
import struct
import sys

hdr = bytearray(open(sys.argv[1], 'rb').read())
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
rnd = random.Random(20261122)


def seed(name, data):
    with open(os.path.join(out, 'seed-' + name), 'wb') as f:
        f.write(bytes(data))


def hdr_with(off, fmt, value):
    h = bytearray(hdr)
    struct.pack_into('<' + fmt, h, off, value)
    return h


# struct tq__hdr: magic 0, version 8, hdr_size 12, total_size 16, mode 24,
# pad 28, arena_bytes 32, group 40, then struct tq__layout at 48: queues,
# levels, capacity, max_payload, procs, slot_size, chunk_cells, stripes,
# wheel, nrings, nchunks, nclasses (u32 each), class_size[12],
# class_count[12], then u64 offsets.
hdr_size = struct.unpack_from('<I', hdr, 12)[0]
total = struct.unpack_from('<Q', hdr, 16)[0]

# mode 0: raw bytes
seed('raw-empty', b'\x00')
seed('raw-short', b'\x00TQ')
seed('raw-magic', b'\x00TQSEGMNT')
seed('raw-magic-version', b'\x00' + hdr[:12])
seed('raw-header-exact', b'\x00' + hdr[:hdr_size])
seed('raw-header-page', b'\x00' + hdr)
seed('raw-header-sized', b'\x00' + hdr_with(16, 'Q', 4096))
seed('raw-random-100', b'\x00' + bytes(rnd.getrandbits(8) for _ in range(100)))
seed('raw-random-1000', b'\x00' + bytes(rnd.getrandbits(8) for _ in range(1000)))
seed('raw-ff', b'\x00' + b'\xff' * 800)

# mode 1: the template, header overwritten; byte 1 = which calls
for flags in (0x0, 0x1, 0x2, 0x4, 0x8, 0xf):
    seed('valid-calls-%x' % flags, bytes([1, flags]))
fields = [
    ('magic', 0, 'B', hdr[0] ^ 1), ('version-old', 8, 'I', 1),
    ('version-new', 8, 'I', 0xffffffff), ('hdr-size', 12, 'I', hdr_size - 8),
    ('total-small', 16, 'Q', total - 4096), ('total-big', 16, 'Q', total + 4096),
    ('mode', 24, 'I', 0o7777777), ('arena', 32, 'Q', 1), ('arena-huge', 32, 'Q', 1 << 62),
    ('group', 40, 'q', 12345), ('queues', 48, 'I', 3), ('queues-0', 48, 'I', 0),
    ('levels', 52, 'I', 65), ('capacity', 56, 'I', 0xffffffff), ('max-payload', 60, 'I', 1 << 30),
    ('procs', 64, 'I', 4096), ('slot-size', 68, 'I', 64), ('nrings', 84, 'I', 1),
    ('nchunks', 88, 'I', 0xffffffff), ('nclasses', 92, 'I', 13),
]
for name, off, fmt, value in fields:
    seed('hdr-' + name, bytes([1, 0xf]) + hdr_with(off, fmt, value)[:max(off + 8, 16)])
seed('hdr-whole-page', bytes([1, 0xf]) + hdr)
for i in range(6):
    h = bytearray(hdr[:hdr_size])
    for _ in range(1 + i):
        h[rnd.randrange(len(h))] ^= 1 << rnd.randrange(8)
    seed('hdr-flips-%d' % i, bytes([1, 0xf]) + h)

# mode 3: the template resized
for name, size in (('0', 0), ('page', 4096), ('minus-page', total - 4096),
                   ('plus-page', total + 4096), ('minus-1', total - 1)):
    seed('size-' + name, bytes([3, 0xf]) + struct.pack('<I', size) + hdr[:8])

# mode 2: patches { u8 region, u32 offset, u8 len, bytes }; regions: 0 header,
# 1 process records, 2 queues, 3 rings, 4 counters, 5 chunk headers,
# 6 chunk bitmap, 7 cells, 8 slot bitmap, 9 slots, 10 class bitmap,
# 11 payload blocks (0x80 | region: only the first 16 pages of rings/cells)


def patch(region, off, data):
    return struct.pack('<BIB', region, off, len(data)) + bytes(data)


ff8 = b'\xff' * 8
patches = {
    'ring-head': patch(0x83, 0, ff8),
    'ring-rpos': patch(0x83, 8, struct.pack('<Q', 1 << 40)),
    'ring-tail': patch(0x83, 64, struct.pack('<Q', 7)),
    'ring-wpos': patch(0x83, 72, ff8),
    'ring-1-rpos': patch(0x83, 128 + 8, struct.pack('<Q', 3)),
    'chunk-next': patch(5, 0, struct.pack('<Q', 5)),
    'chunk-base': patch(5, 8, struct.pack('<Q', 1 << 44)),
    'chunk-owner': patch(5, 16, ff8),
    'cell-0': patch(0x87, 0, struct.pack('<Q', 0xffffffff)),
    'cell-1': patch(0x87, 8, struct.pack('<Q', 64)),
    'cell-gen': patch(0x87, 0, struct.pack('<Q', 1 << 32 | 1)),
    'slot-state': patch(9, 0, struct.pack('<Q', 0x2fffffffffffffff)),
    'slot-state-leased': patch(9, 128, struct.pack('<Q', 4 << 60 | 0x10000)),
    'slot-len': patch(9, 12, struct.pack('<I', 0xffffffff)),
    'slot-block': patch(9, 16, struct.pack('<I', 0x7fffffff)),
    'slot-queue': patch(9, 42, b'\xff\xff'),
    'slot-attempts': patch(9, 44, b'\xff\x00'),
    'slot-bits-full': patch(8, 0, ff8),
    'slot-bits-empty': patch(8, 0, bytes(8)),
    'chunk-bits-empty': patch(6, 0, bytes(64)),
    'proc-owner': patch(1, 0, struct.pack('<Q', 1 << 42 | 1 << 16)),
    'proc-held': patch(1, 128, struct.pack('<IIII', 0x7fffffff, 0x40000000, 0xbfffffff, 0xffffffff)),
    'proc-free-mask': patch(1, 56, struct.pack('<Q', 0xffffffffffffffff)),
    'proc-sleeping': patch(1, 64, ff8 * 4),
    'proc-recoverer': patch(1, 1152 + 48, struct.pack('<Q', 3)),
    'queue-state': patch(2, 0, struct.pack('<Q', 2 << 60 | 5)),
    'queue-name': patch(2, 8, b'x' * 48),
    'queue-weight': patch(2, 64, ff8 * 4),
    'queue-count': patch(2, 256, ff8),
    'hdr-wheel': patch(0, 0x2c0, ff8 * 2),
    'hdr-delayed': patch(0, 0x2c8, struct.pack('<Q', 5)),
    'counters': patch(4, 0, ff8 * 16),
    'class-bits': patch(10, 0, ff8 * 4),
    'blocks': patch(11, 0, ff8 * 31),
}
for name, p in patches.items():
    seed('patch-' + name, bytes([2, 0xf]) + p)
for i in range(8):
    ps = b''
    for _ in range(1 + i * 2):
        n = rnd.choice((1, 2, 4, 8, 16))
        ps += patch(rnd.randrange(256), rnd.getrandbits(32), bytes(rnd.getrandbits(8) for _ in range(n)))
    seed('patch-random-%d' % i, bytes([2, 0xf]) + ps)
