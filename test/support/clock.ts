/** A fake clock for expiry tests: time moves only when told. */
export function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    seconds(s: number) {
      t += s * 1000;
    },
  };
}
