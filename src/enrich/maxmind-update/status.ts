/** `geoip status`: each database's edition, path, build date and age, for people and for monitoring. */
import { databasePath, readLocalDatabase } from './install.js';

export interface DatabaseStatus {
  edition: string;
  path: string;
  /** ok, or why monitoring should alert. */
  health: 'ok' | 'missing' | 'unreadable' | 'wrong-edition' | 'old';
  buildDate: string | null;
  ageDays: number | null;
  detail?: string;
}

export async function databaseStatus(dir: string, editions: string[], maxAgeDays: number, now: Date = new Date()): Promise<DatabaseStatus[]> {
  const out: DatabaseStatus[] = [];
  for (const edition of editions) {
    const path = databasePath(dir, edition);
    const local = await readLocalDatabase(path);
    if (local.state === 'missing') {
      out.push({ edition, path, health: 'missing', buildDate: null, ageDays: null });
      continue;
    }
    if (local.state === 'unreadable') {
      out.push({ edition, path, health: 'unreadable', buildDate: null, ageDays: null, detail: local.message });
      continue;
    }
    const ageDays = Math.floor((now.getTime() - local.db.buildEpoch.getTime()) / 86_400_000);
    const base = { edition, path, buildDate: local.db.buildDate, ageDays };
    if (local.db.databaseType !== edition) out.push({ ...base, health: 'wrong-edition', detail: `holds a ${local.db.databaseType}` });
    else out.push({ ...base, health: ageDays > maxAgeDays ? 'old' : 'ok' });
  }
  return out;
}
