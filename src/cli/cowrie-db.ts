import { loadConfigFile, resolveConfig } from '../config/config.js';
import { UserError } from '../errors.js';
import { fmt } from '../log.js';
import { dbCheck, dbInfo } from '../store/inspect.js';
import { migrate, openStore } from '../store/store.js';
import { addDbOptions, dbFlag, newProgram, runProgram } from './main.js';

interface DbOpts { db?: string; database?: string; config?: string; json?: boolean }

/** `migrate` creates a missing SQLite file; `info` and `check` report it instead of creating an empty one. */
async function open(opts: DbOpts, mode: 'migrate' | 'inspect') {
  const cfg = resolveConfig({ db: dbFlag(opts) }, process.env, loadConfigFile(opts.config, process.env));
  return mode === 'migrate' ? openStore(cfg.db, { migrate: false }) : openStore(cfg.db, { create: false });
}

const program = newProgram('cowrie-db', 'Create, migrate, inspect and check the cowrie-enrich database.');

addDbOptions(program.command('migrate').description('bring the schema up to date (every command also does this on open)'))
  .action(async (opts: DbOpts) => {
    const store = await open(opts, 'migrate');
    try {
      const r = await migrate(store);
      process.stdout.write(r.applied.length
        ? `migrated ${store.target.display} from version ${r.from} to ${r.to} (${r.applied.join(', ')})\n`
        : `${store.target.display} is up to date (schema version ${r.to})\n`);
    } finally {
      await store.close();
    }
  });

addDbOptions(program.command('info').description('schema version, dialect, row counts, file size or server'))
  .option('--json', 'print JSON')
  .action(async (opts: DbOpts) => {
    const store = await open(opts, 'inspect');
    try {
      const info = await dbInfo(store);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
        return;
      }
      const lines = [
        `database:       ${info.url}`,
        `dialect:        ${info.dialect}`,
        `schema version: ${info.schemaVersion} (latest ${info.latestVersion})`,
        ...Object.entries(info.details).map(([k, v]) => `${`${k}:`.padEnd(16)}${typeof v === 'number' ? fmt(v) : v}`),
        'rows:',
        ...Object.entries(info.rowCounts).map(([t, n]) => `  ${t.padEnd(20)}${fmt(n).padStart(12)}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      await store.close();
    }
  });

addDbOptions(program.command('check').description('check integrity: schema drift, orphan rows; exit 1 on a problem'))
  .action(async (opts: DbOpts) => {
    const store = await open(opts, 'inspect');
    try {
      const problems = await dbCheck(store);
      for (const p of problems) process.stdout.write(`${p.kind}: ${p.message}\n`);
      if (problems.length) throw new UserError(`${problems.length} problem(s) found in ${store.target.display}`, 1);
      process.stdout.write(`${store.target.display}: ok\n`);
    } finally {
      await store.close();
    }
  });

await runProgram(program);
