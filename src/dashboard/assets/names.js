// Names of keys, teams and customers by id, for showing a name where the
// API gives an id (logs, spend). Loaded on demand, kept a few seconds.

import { listAll } from "./api.js";

let cached = null;
let at = 0;

export async function names() {
  if (cached && Date.now() - at < 15000) return cached;
  const [keys, teams, customers] = await Promise.all([
    listAll("/api/keys").catch(() => []),
    listAll("/api/teams").catch(() => []),
    listAll("/api/customers").catch(() => []),
  ]);
  const map = (xs) => new Map(xs.map((x) => [x.id, x]));
  cached = { keys: map(keys), teams: map(teams), customers: map(customers) };
  at = Date.now();
  return cached;
}

/** Forget the names (after a write). */
export function invalidateNames() {
  cached = null;
}
