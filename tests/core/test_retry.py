import math

from derms.core.retry import exponential_delay


def test_exponential_delay_doubles_from_first_and_stops_at_cap() -> None:
    delays = [exponential_delay(n, first=1.0, factor=2.0, cap=10.0) for n in range(1, 6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert exponential_delay(30, first=0.5, factor=3.0, cap=math.inf) == 0.5 * 3.0**29
