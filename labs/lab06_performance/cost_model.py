"""What a month of a Lambda function costs, and the cheapest memory that is fast enough.

Prices: AWS Lambda pricing page, https://aws.amazon.com/lambda/pricing/, us-east-1, as
published in 2026 (check the page for your region and date). Left out on purpose: the
free tier (1M requests and 400,000 GB-seconds a month, per account, not per function),
the cheaper tiers above 6 billion GB-seconds a month, ephemeral storage beyond 512 MB,
and data transfer.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

PRICE_PER_GB_SECOND = {
    "x86_64": Decimal("0.0000166667"),
    "arm64": Decimal("0.0000133334"),
}
PRICE_PER_REQUEST = Decimal("0.20") / 1_000_000
CENT = Decimal("0.01")
MB_PER_GB = 1024  # Lambda's memory sizes are MiB: 1,024 MB is 1 GB of the price

MEASUREMENTS = Path(__file__).with_name("measurements.csv")


@dataclass(frozen=True)
class Measurement:
    """One row of measurements.csv: the function's durations at one memory size."""

    memory_mb: int
    avg_ms: Decimal
    p50_ms: Decimal
    p95_ms: Decimal


def read_measurements(path: Path = MEASUREMENTS) -> list[Measurement]:
    with path.open(encoding="utf-8", newline="") as rows:
        return [
            Measurement(
                memory_mb=int(row["memory_mb"]),
                avg_ms=Decimal(row["avg_ms"]),
                p50_ms=Decimal(row["p50_ms"]),
                p95_ms=Decimal(row["p95_ms"]),
            )
            for row in csv.DictReader(rows)
        ]


def monthly_cost(
    invocations: int,
    average_duration_ms: Decimal | int | str,
    memory_mb: int,
    architecture: str,
) -> Decimal:
    """Dollars for a month of `invocations` (requests plus GB-seconds), to the cent."""
    # TODO(task 1): add the compute time: GB-seconds (memory in GB times duration
    # in seconds, for every invocation) at the architecture's price per GB-second.
    # Decimal throughout, rounded to the cent (half up) once, at the end.
    return invocations * PRICE_PER_REQUEST


def cheapest_memory(
    measurements: list[Measurement],
    p95_target_ms: Decimal | int,
    invocations: int,
    architecture: str,
) -> int:
    """The memory size whose month costs least, of those whose p95 meets the target."""
    # TODO(task 2): keep the sizes whose p95 meets the target, price a month of
    # each with monthly_cost, and return the cheapest (the smaller on a tie).
    return max(m.memory_mb for m in measurements)
