# A 64-bit microsecond clock over MicroPython's wrapping ``time.ticks_us``.
#
# ``ticks_us`` wraps (every 2**30 us, about 18 minutes, on most ports), and the
# protocol's band time is a u64 that must never go backwards. ``Clock64.now_us``
# adds the wrapped difference since its last call to a Python int (arbitrary
# precision), so it stays exact as long as it is called at least once per half
# period (9 minutes): the band's main loop calls it every few milliseconds.


class Clock64:
    def __init__(self, ticks_us=None, ticks_diff=None, start_us=0):
        if ticks_us is None:
            import time

            ticks_us = time.ticks_us
            ticks_diff = time.ticks_diff
        self._ticks_us = ticks_us
        self._ticks_diff = ticks_diff
        self._last = ticks_us()
        self._now = start_us

    def now_us(self):
        """Microseconds since the clock was made (plus ``start_us``); never decreases."""
        ticks = self._ticks_us()
        step = self._ticks_diff(ticks, self._last)
        if step > 0:
            self._now += step
            self._last = ticks
        return self._now

    def ticks_at(self, band_us):
        """How many ticks from now until band time ``band_us`` (for a sleep), at least 0."""
        delta = band_us - self.now_us()
        return delta if delta > 0 else 0
