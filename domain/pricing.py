"""What a render costs, in whole credits.

    credits = max(1, ceil(seconds × resolution_rate × quality_factor))

resolution_rate, by the number of pixels in one frame (width × height):

    up to   640×480  (  307,200 px)  0.25 credit per second
    up to  1280×720  (  921,600 px)  0.5
    up to 1920×1080  (2,073,600 px)  1
    above (up to 4K)                 2

quality_factor: low 0.5, medium 0.75, high 1.

So a 5 s 1920×1080 "high" script costs 5 credits (the contract's example), and
the same script at "low" costs 3 (ceil 2.5). All arithmetic is exact (Fraction),
so a price never depends on float rounding.

The estimate is charged at submission. On completion the price is computed again
from the duration FFmpeg actually rendered; the job never costs more than its
estimate, and any difference is refunded by an event.
"""

from __future__ import annotations

import math
from fractions import Fraction

from phantomflow.domain.script import MovieScript, Quality

RESOLUTION_TIERS: tuple[tuple[int, Fraction], ...] = (
    (640 * 480, Fraction(1, 4)),
    (1280 * 720, Fraction(1, 2)),
    (1920 * 1080, Fraction(1)),
)
ABOVE_FULL_HD_RATE = Fraction(2)

QUALITY_FACTORS: dict[str, Fraction] = {
    "low": Fraction(1, 2),
    "medium": Fraction(3, 4),
    "high": Fraction(1),
}


def resolution_rate(width: int, height: int) -> Fraction:
    pixels = width * height
    for max_pixels, rate in RESOLUTION_TIERS:
        if pixels <= max_pixels:
            return rate
    return ABOVE_FULL_HD_RATE


def price(seconds: float, width: int, height: int, quality: Quality) -> int:
    """Credits for `seconds` of video at this size and quality."""
    # Durations arrive as floats (JSON numbers, FFmpeg's clock); round to the
    # millisecond first so 5.0000001 s is not billed as 6 credits.
    exact_seconds = Fraction(round(seconds * 1000), 1000)
    cost = exact_seconds * resolution_rate(width, height) * QUALITY_FACTORS[quality]
    return max(1, math.ceil(cost))


def estimate(script: MovieScript) -> int:
    """Credits charged when the script is submitted."""
    return price(script.duration, script.width, script.height, script.quality)


def settle(script: MovieScript, estimated: int, rendered_seconds: float) -> int:
    """Credits actually used by a finished render: never more than the estimate."""
    return min(estimated, price(rendered_seconds, script.width, script.height, script.quality))


def cancellation_charge(script: MovieScript, estimated: int, progress: float) -> int:
    """Credits kept when a job is cancelled: nothing before rendering starts, then the
    share of the video rendered so far, priced as usual, never above the estimate."""
    if progress <= 0:
        return 0
    return min(
        estimated,
        price(script.duration * progress, script.width, script.height, script.quality),
    )
