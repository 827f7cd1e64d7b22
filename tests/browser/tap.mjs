// tap.mjs: the TAP points that the browser scripts (journey.mjs,
// privacy.mjs, mailshots.mjs) print, written once.

// Stops a script; reported: its "not ok" is printed already.
export class Stop extends Error {
  constructor(message, reported = false) { super(message); this.reported = reported; }
}

/* Prints one TAP point (its detail's first 30 lines under it when it
 * fails); returns cond. */
export function ok(cond, name, detail) {
  console.log((cond ? 'ok' : 'not ok') + ' - ' + name);
  if (!cond && detail !== undefined)
    for (const line of String(detail).split('\n').slice(0, 30))
      console.log('#   ' + line);
  return cond;
}

/* A point the rest of the script depends on: stops it when false. */
export function must(cond, name, detail) {
  if (!ok(cond, name, detail))
    throw new Stop(name, true);
}
