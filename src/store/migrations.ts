import type { DialectAdapter, SqlRunner } from './dialects/types.js';
import { backfillReportFacts, backfillReportRollups } from './report-facts-repo.js';

/**
 * Forward-only, numbered migrations. Each is DDL written once against the
 * dialect's type names (ColumnTypes), applied in one transaction by store.ts.
 * Later migrations may add columns; they never rename these.
 */
export interface ColumnTypes {
  /** Auto-incrementing integer primary key. */
  id: string;
  json: string;
  ts: string;
  bool: string;
  bigint: string;
  real: string;
  falseValue: string;
}

export interface Migration {
  version: number;
  name: string;
  up(t: ColumnTypes): string[];
  /** Fills what the new DDL derives from rows already stored (same transaction as the DDL). */
  backfill?(db: DialectAdapter, tx: SqlRunner): Promise<void>;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: (t) => [
      `CREATE TABLE raw_events (
        id ${t.id},
        source TEXT NOT NULL,
        source_offset ${t.bigint},
        source_inode TEXT,
        source_generation INTEGER,
        sensor TEXT,
        session_id TEXT,
        event_type TEXT NOT NULL,
        event_timestamp ${t.ts} NOT NULL,
        src_ip TEXT,
        payload ${t.json} NOT NULL,
        payload_hash TEXT NOT NULL,
        ingest_id TEXT,
        ingest_at ${t.ts} NOT NULL,
        -- Identity is the content hash; the timestamp leads so inserts land at the B-tree's edge
        -- (time order) instead of at random places (same uniqueness: the hash covers the timestamp).
        CONSTRAINT raw_events_identity UNIQUE (event_timestamp, payload_hash)
      )`,
      // No index on raw_events.session_id: random keys cost a third of the ingest time (measured,
      // docs/BENCHMARKS.md). A session's events are found through the identity index's leading
      // column: event_timestamp BETWEEN the summary's first_event_at AND last_event_at.
      `CREATE TABLE session_summaries (
        session_id TEXT PRIMARY KEY,
        sensor TEXT,
        source_ip TEXT,
        first_event_at ${t.ts},
        last_event_at ${t.ts},
        duration_seconds ${t.real},
        event_count INTEGER NOT NULL DEFAULT 0,
        login_attempts INTEGER NOT NULL DEFAULT 0,
        login_success ${t.bool} NOT NULL DEFAULT ${t.falseValue},
        command_count INTEGER NOT NULL DEFAULT 0,
        file_downloads INTEGER NOT NULL DEFAULT 0,
        client_version TEXT,
        hassh TEXT,
        protocol TEXT,
        enrichment ${t.json},
        enrichment_at ${t.ts},
        snapshot_asn ${t.bigint},
        snapshot_country TEXT,
        snapshot_classification TEXT
      )`,
      `CREATE INDEX session_summaries_source_ip ON session_summaries (source_ip)`,
      `CREATE INDEX session_summaries_last_event ON session_summaries (last_event_at)`,
      `CREATE INDEX session_summaries_unenriched ON session_summaries (last_event_at) WHERE enrichment_at IS NULL`,
      `CREATE TABLE files (
        shasum TEXT NOT NULL,
        session_id TEXT NOT NULL,
        url TEXT,
        filename TEXT,
        first_seen ${t.ts},
        last_seen ${t.ts},
        enrichment ${t.json},
        enrichment_status TEXT NOT NULL DEFAULT 'pending',
        vt_malicious INTEGER,
        vt_suspicious INTEGER,
        vt_harmless INTEGER,
        vt_undetected INTEGER,
        vt_label TEXT,
        vt_last_analysis_at ${t.ts},
        enrichment_updated_at ${t.ts},
        PRIMARY KEY (session_id, shasum)
      )`,
      `CREATE INDEX files_shasum ON files (shasum)`,
      `CREATE INDEX files_status ON files (enrichment_status, enrichment_updated_at)`,
      `CREATE TABLE ip_inventory (
        ip_address TEXT PRIMARY KEY,
        first_seen ${t.ts},
        last_seen ${t.ts},
        session_count INTEGER NOT NULL DEFAULT 0,
        sensors ${t.json},
        current_asn ${t.bigint},
        asn_last_verified ${t.ts},
        geo_country TEXT,
        is_scanner ${t.bool},
        enrichment ${t.json},
        enrichment_updated_at ${t.ts},
        enrichment_version TEXT,
        enrichment_pending TEXT
      )`,
      `CREATE INDEX ip_inventory_staleness ON ip_inventory (enrichment_updated_at)`,
      `CREATE INDEX ip_inventory_pending ON ip_inventory (enrichment_pending) WHERE enrichment_pending IS NOT NULL`,
      `CREATE INDEX ip_inventory_last_seen ON ip_inventory (last_seen)`,
      `CREATE INDEX ip_inventory_asn ON ip_inventory (current_asn)`,
      `CREATE TABLE asn_inventory (
        asn_number ${t.bigint} PRIMARY KEY,
        organization_name TEXT,
        organization_country TEXT,
        rir_registry TEXT,
        first_seen ${t.ts},
        last_seen ${t.ts},
        unique_ip_count INTEGER NOT NULL DEFAULT 0,
        total_session_count INTEGER NOT NULL DEFAULT 0,
        enrichment ${t.json},
        updated_at ${t.ts}
      )`,
      `CREATE TABLE enrichment_cache (
        service TEXT NOT NULL,
        cache_key TEXT NOT NULL,
        value ${t.json},
        fetched_at ${t.ts} NOT NULL,
        expires_at ${t.ts} NOT NULL,
        PRIMARY KEY (service, cache_key)
      )`,
      `CREATE INDEX enrichment_cache_expiry ON enrichment_cache (expires_at)`,
      `CREATE TABLE api_quota (
        service TEXT NOT NULL,
        day TEXT NOT NULL,
        used INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (service, day)
      )`,
      `CREATE TABLE ingest_cursors (
        source TEXT PRIMARY KEY,
        inode TEXT,
        generation INTEGER NOT NULL DEFAULT 0,
        byte_offset ${t.bigint} NOT NULL DEFAULT 0,
        first_line_hash TEXT,
        source_size ${t.bigint},
        updated_at ${t.ts} NOT NULL
      )`,
      `CREATE TABLE dead_letter_events (
        id ${t.id},
        source TEXT NOT NULL,
        source_offset ${t.bigint},
        reason TEXT NOT NULL,
        detail TEXT,
        raw_line TEXT,
        raw_hash TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        CONSTRAINT dead_letter_identity UNIQUE (raw_hash)
      )`,
    ],
  },
  {
    version: 2,
    name: 'files.downloaded: file_downloads counts distinct downloaded files',
    up: (t) => [
      `ALTER TABLE files ADD COLUMN downloaded ${t.bool} NOT NULL DEFAULT ${t.falseValue}`,
      // Earlier loads kept no flag: a file of a session that logged a download counts as downloaded
      // (one scan of raw_events; sessions that both uploaded and downloaded may count an upload).
      `UPDATE files SET downloaded = TRUE WHERE session_id IN
        (SELECT session_id FROM raw_events WHERE event_type = 'cowrie.session.file_download' AND session_id IS NOT NULL)`,
      `UPDATE session_summaries SET file_downloads =
        (SELECT count(*) FROM files f WHERE f.session_id = session_summaries.session_id AND f.downloaded = TRUE)
        WHERE session_id IN (SELECT session_id FROM files)`,
    ],
  },
  {
    version: 3,
    name: 'report facts',
    // What cowrie-report needs that the summaries lack, kept up to date at ingest from the events
    // actually inserted (report-facts-repo.ts), so no report reads raw_events. Long attacker text
    // is keyed by its SHA-256: a PostgreSQL B-tree entry cannot hold more than ~2.7 kB.
    up: (t) => [
      `CREATE TABLE session_credentials (
        session_id TEXT NOT NULL,
        credential_hash TEXT NOT NULL,
        username TEXT,
        password TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, credential_hash)
      )`,
      `CREATE TABLE session_commands (
        session_id TEXT NOT NULL,
        command_hash TEXT NOT NULL,
        command TEXT,
        executions INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, command_hash)
      )`,
      // When each password and command was first seen on each sensor ('' = no sensor): "new in the window".
      `CREATE TABLE first_seen_values (
        kind TEXT NOT NULL,
        value_hash TEXT NOT NULL,
        sensor TEXT NOT NULL,
        value TEXT,
        first_seen ${t.ts} NOT NULL,
        PRIMARY KEY (kind, value_hash, sensor)
      )`,
      // Report windows select sessions by their first event.
      `CREATE INDEX session_summaries_first_event ON session_summaries (first_event_at)`,
    ],
    backfill: backfillReportFacts,
  },
  {
    version: 4,
    name: 'report rollups',
    // cowrie-report reads whole days from these instead of every session (report-facts-repo.ts keeps
    // them at ingest; the backfill recomputes them from the session tables). A day is the UTC date of
    // a session's first event; sensor '' = none. IF NOT EXISTS and the backfill's DELETE make this
    // step safe to run again on a database whose version was set back by hand.
    up: () => [
      `CREATE TABLE IF NOT EXISTS report_daily (
        day TEXT NOT NULL,
        sensor TEXT NOT NULL,
        sessions INTEGER NOT NULL DEFAULT 0,
        events INTEGER NOT NULL DEFAULT 0,
        login_attempts INTEGER NOT NULL DEFAULT 0,
        sessions_with_logins INTEGER NOT NULL DEFAULT 0,
        sessions_logged_in INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0,
        commands INTEGER NOT NULL DEFAULT 0,
        downloads INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, sensor)
      )`,
      `CREATE TABLE IF NOT EXISTS report_credential_days (
        credential_hash TEXT NOT NULL,
        day TEXT NOT NULL,
        sensor TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (credential_hash, day, sensor)
      )`,
      `CREATE TABLE IF NOT EXISTS report_command_days (
        command_hash TEXT NOT NULL,
        day TEXT NOT NULL,
        sensor TEXT NOT NULL,
        executions INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (command_hash, day, sensor)
      )`,
      // All-time counts: an upper bound of any window's, so a top list stops reading early.
      `CREATE TABLE IF NOT EXISTS report_credential_totals (
        credential_hash TEXT PRIMARY KEY,
        username TEXT,
        password TEXT,
        attempts INTEGER NOT NULL DEFAULT 0
      )`,
      `CREATE INDEX IF NOT EXISTS report_credential_totals_attempts ON report_credential_totals (attempts, credential_hash)`,
      `CREATE TABLE IF NOT EXISTS report_command_totals (
        command_hash TEXT PRIMARY KEY,
        command TEXT,
        executions INTEGER NOT NULL DEFAULT 0
      )`,
      `CREATE INDEX IF NOT EXISTS report_command_totals_executions ON report_command_totals (executions, command_hash)`,
      // Per-IP figures of a window read this index alone (no table row per session); it also
      // serves every lookup by source_ip, so it replaces the single-column index.
      `DROP INDEX IF EXISTS session_summaries_source_ip`,
      `CREATE INDEX IF NOT EXISTS session_summaries_ip_window ON session_summaries (source_ip, first_event_at, last_event_at, sensor)`,
      // Distinct IPs and sessions of the few credentials and commands a top list shows.
      `CREATE INDEX IF NOT EXISTS session_credentials_hash ON session_credentials (credential_hash, session_id)`,
      `CREATE INDEX IF NOT EXISTS session_commands_hash ON session_commands (command_hash, session_id)`,
    ],
    backfill: backfillReportRollups,
  },
  {
    version: 5,
    name: 'worker coordination',
    // Several refresh workers (and follow --enrich) on one database share the work and the limits
    // (docs/SCALING.md). Times are milliseconds since the epoch on the database's clock
    // (DialectAdapter.nowMsSql), so workers on machines with skewed clocks still agree.
    up: (t) => [
      // An item (an IP, a file hash) being enriched by one worker until `expires_ms`; the lease is
      // renewed while the worker works, so a killed worker's items are free again within a lease.
      `CREATE TABLE IF NOT EXISTS work_claims (
        kind TEXT NOT NULL,
        item TEXT NOT NULL,
        holder TEXT NOT NULL,
        expires_ms ${t.bigint} NOT NULL,
        PRIMARY KEY (kind, item)
      )`,
      // A worker's own claims: renewed and dropped by holder.
      `CREATE INDEX IF NOT EXISTS work_claims_holder ON work_claims (holder)`,
      // Workers asking one rate-limited service at once: each takes an equal share of its rate.
      // `share`: the most requests a working holder may have in the window (its limit, published
      // before it raises it): what a holder that died may still have counted at the server.
      // `draining`: a holder that left (or died) keeps its row until its last requests have left
      // the server's window, and says how many they may be (NULL while it works), so the others
      // may use the rest of the rate at once instead of waiting out the window.
      `CREATE TABLE IF NOT EXISTS rate_shares (
        service TEXT NOT NULL,
        holder TEXT NOT NULL,
        joined_ms ${t.bigint} NOT NULL,
        expires_ms ${t.bigint} NOT NULL,
        share INTEGER,
        draining INTEGER,
        PRIMARY KEY (service, holder)
      )`,
      // At most N connections to a service across all workers (Team Cymru: 2): one row per slot.
      `CREATE TABLE IF NOT EXISTS connection_slots (
        service TEXT NOT NULL,
        slot INTEGER NOT NULL,
        holder TEXT,
        expires_ms ${t.bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (service, slot)
      )`,
    ],
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
