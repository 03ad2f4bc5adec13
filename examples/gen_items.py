#!/usr/bin/env python3
"""Generates the large inputs of the examples (never committed).

    python3 examples/gen_items.py 100000 > /tmp/items.json         # Pattern 2, large_arrays
    python3 examples/gen_items.py 1000000 > /tmp/items-1m.json     # 1 000 000 records
    python3 examples/gen_items.py --numbers 100000 > /tmp/data.json  # migration: {"data": [1..n]}

Records are {"id": i, "value": v} with v in [0, 100), from a fixed seed, so
the same command always writes the same file.
"""
import json
import random
import sys


def main(argv):
    numbers = "--numbers" in argv
    args = [a for a in argv if not a.startswith("--")]
    n = int(args[0]) if args else 100000
    out = sys.stdout
    if numbers:
        out.write('{"data":[')
        out.write(",".join(str(i) for i in range(1, n + 1)))
        out.write("]}\n")
        return
    rng = random.Random(42)
    out.write('{"items":[')
    for i in range(n):
        if i:
            out.write(",")
        out.write('{"id":%d,"value":%s}' % (i, json.dumps(rng.random() * 100)))
    out.write("]}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
