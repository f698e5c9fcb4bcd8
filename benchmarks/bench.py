"""Benchmarks: print each figure with the goal beside it (issue 11). Never pass/fail:
this machine is shared and noisy, so only ratios measured in one run mean anything.

    python -m benchmarks.bench --all       # everything below, side by side in one run
    python -m benchmarks.bench             # import cost and the embedded backend only
    python -m benchmarks.bench --moto --dynamodb-local   # side by side with those servers
    python -m benchmarks.bench --scaling --plot          # 10^3..10^5 enrollments, and the plot
    python -m benchmarks.bench --client-cost             # DynamoDB path, client-side CPU

Run from the repository root. DynamoDB Local is started by the tests' helper
(tests/support/dynamodb_local.py: fetched once with npm into a cache,
ENROLLKIT_DYNAMODB_LOCAL_CACHE overrides where); without Java that backend is skipped
with a line saying so.
"""

from __future__ import annotations

import argparse
import os

from benchmarks import client_cost, import_cost, plot, read_costs, scaling, side_by_side


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--all", action="store_true", help="every benchmark, and the plot")
    parser.add_argument("--moto", action="store_true", help="side by side with a moto server")
    parser.add_argument(
        "--dynamodb-local", action="store_true", help="side by side with DynamoDB Local"
    )
    parser.add_argument("--scaling", action="store_true", help="cost against table size")
    parser.add_argument("--plot", action="store_true", help="draw the scaling plot into docs/")
    parser.add_argument("--client-cost", action="store_true", help="DynamoDB path client CPU")
    parser.add_argument("--count", type=int, default=30, help="operations per round, per kind")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=list(scaling.DEFAULT_SIZES),
        help="stored enrollments for --scaling, comma-separated",
    )
    args = parser.parse_args()
    if args.all:
        args.moto = args.dynamodb_local = args.scaling = args.plot = args.client_cost = True
    # A local endpoint takes any credentials; the canned client brings its own.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

    import_cost.run()
    print()
    read_costs.run()
    print()
    side_by_side.run(args.count, args.rounds, moto=args.moto, local=args.dynamodb_local)
    if args.client_cost:
        print()
        client_cost.run()
    if args.scaling or args.plot:
        print()
        points = scaling.run(args.sizes)
        if args.plot:
            print(f"  plot: {plot.draw(points)}")


if __name__ == "__main__":
    main()
