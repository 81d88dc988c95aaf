import type { Generated } from 'kysely';

/**
 * Table types for Kysely. Names follow the Python original so users' SQL keeps working.
 * Timestamps are ISO-8601 UTC text on both dialects as seen from here (see time.ts);
 * JSON columns are read back as parsed values or text depending on the dialect —
 * repositories normalise with readJson().
 */
type Json = unknown;
type Bool = boolean | number;

export interface SchemaStateTable { key: string; value: string }

export interface RawEventsTable {
  id: Generated<number>;
  source: string;
  source_offset: number | null;
  source_inode: string | null;
  source_generation: number | null;
  sensor: string | null;
  session_id: string | null;
  event_type: string;
  event_timestamp: string;
  src_ip: string | null;
  payload: Json;
  payload_hash: string;
  ingest_id: string | null;
  ingest_at: string;
}

export interface SessionSummariesTable {
  session_id: string;
  sensor: string | null;
  source_ip: string | null;
  first_event_at: string | null;
  last_event_at: string | null;
  duration_seconds: number | null;
  event_count: number;
  login_attempts: number;
  login_success: Bool;
  command_count: number;
  file_downloads: number;
  client_version: string | null;
  hassh: string | null;
  protocol: string | null;
  enrichment: Json | null;
  enrichment_at: string | null;
  snapshot_asn: number | null;
  snapshot_country: string | null;
  snapshot_classification: string | null;
}

export interface FilesTable {
  shasum: string;
  session_id: string;
  url: string | null;
  filename: string | null;
  downloaded: boolean;
  first_seen: string | null;
  last_seen: string | null;
  enrichment: Json | null;
  enrichment_status: string;
  vt_malicious: number | null;
  vt_suspicious: number | null;
  vt_harmless: number | null;
  vt_undetected: number | null;
  vt_label: string | null;
  vt_last_analysis_at: string | null;
  enrichment_updated_at: string | null;
}

export interface IpInventoryTable {
  ip_address: string;
  first_seen: string | null;
  last_seen: string | null;
  session_count: number;
  sensors: Json | null;
  current_asn: number | null;
  asn_last_verified: string | null;
  geo_country: string | null;
  is_scanner: Bool | null;
  enrichment: Json | null;
  enrichment_updated_at: string | null;
  enrichment_version: string | null;
  /** Sources still owed an answer for this IP (comma-separated), e.g. `greynoise`: picked up by the next refresh. */
  enrichment_pending: string | null;
}

export interface AsnInventoryTable {
  asn_number: number;
  organization_name: string | null;
  organization_country: string | null;
  rir_registry: string | null;
  first_seen: string | null;
  last_seen: string | null;
  unique_ip_count: number;
  total_session_count: number;
  enrichment: Json | null;
  updated_at: string | null;
}

export interface EnrichmentCacheTable {
  service: string;
  cache_key: string;
  value: Json | null;
  fetched_at: string;
  expires_at: string;
}

export interface ApiQuotaTable { service: string; day: string; used: number }

export interface IngestCursorsTable {
  source: string;
  inode: string | null;
  generation: number;
  byte_offset: number;
  first_line_hash: string | null;
  /** Size on disk when last read: an unchanged compressed file is skipped without reading. */
  source_size: number | null;
  updated_at: string;
}

export interface DeadLetterEventsTable {
  id: Generated<number>;
  source: string;
  source_offset: number | null;
  reason: string;
  detail: string | null;
  raw_line: string | null;
  raw_hash: string;
  created_at: string;
}

export interface SessionCredentialsTable {
  session_id: string;
  credential_hash: string;
  username: string | null;
  password: string | null;
  attempts: number;
  successes: number;
}

export interface SessionCommandsTable {
  session_id: string;
  command_hash: string;
  command: string | null;
  executions: number;
}

export interface FirstSeenValuesTable {
  kind: string;
  value_hash: string;
  sensor: string;
  value: string | null;
  first_seen: string;
}

export interface Database {
  schema_state: SchemaStateTable;
  raw_events: RawEventsTable;
  session_summaries: SessionSummariesTable;
  files: FilesTable;
  ip_inventory: IpInventoryTable;
  asn_inventory: AsnInventoryTable;
  enrichment_cache: EnrichmentCacheTable;
  api_quota: ApiQuotaTable;
  ingest_cursors: IngestCursorsTable;
  dead_letter_events: DeadLetterEventsTable;
  session_credentials: SessionCredentialsTable;
  session_commands: SessionCommandsTable;
  first_seen_values: FirstSeenValuesTable;
}

export const TABLES: Array<keyof Database> = [
  'schema_state', 'raw_events', 'session_summaries', 'files', 'ip_inventory',
  'asn_inventory', 'enrichment_cache', 'api_quota', 'ingest_cursors', 'dead_letter_events',
  'session_credentials', 'session_commands', 'first_seen_values',
];

/** JSON columns come back parsed from PostgreSQL and as text from SQLite. */
export function readJson<T = unknown>(v: unknown): T | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') {
    try { return JSON.parse(v) as T; } catch { return null; }
  }
  return v as T;
}

export function readBool(v: unknown): boolean | null {
  if (v === null || v === undefined) return null;
  return v === true || v === 1 || v === '1' || v === 't';
}
