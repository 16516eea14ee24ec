-- Mail import: the tables. Mailboxes (credentials in Vault, never in a column),
-- imported emails, and the per-folder sync state the importer commits together with
-- each batch. Functions live in the files named for what they do:
--   ..._mailbox_api.sql    a signed-in user's add / update / remove of their own mailboxes
--   ..._mail_importer.sql  what the importer (import-emails) calls
-- A signed-in user reads their own rows of public.mailboxes and public.emails (RLS);
-- nothing here ever holds or returns a credential.

create table public.mailboxes (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  -- Every field a user sets is bounded, and free text holds no control characters (an
  -- IMAP command line or a terminal printing it must not be steered by them).
  label text check (length(label) <= 100 and label !~ '[[:cntrl:]]'),
  host text not null check (host ~ '^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$'),
  port integer not null check (port between 1 and 65535),
  tls_mode text not null default 'tls' check (tls_mode in ('tls', 'starttls', 'plain')),
  username text not null check (length(username) between 1 and 320 and username !~ '[[:cntrl:]]'),
  auth_kind text not null default 'password' check (auth_kind in ('password', 'oauth2')),
  folders text[] not null default '{INBOX}'
    check (cardinality(folders) between 1 and 50 and array_position(folders, null) is null
           and array_position(folders, '') is null
           and length(array_to_string(folders, '/')) <= 10000
           and array_to_string(folders, '/') !~ '[[:cntrl:]]'),
  enabled boolean not null default true,
  paused_reason text,
  consecutive_auth_failures integer not null default 0,
  last_error text,
  last_synced_at timestamptz,
  import_run_id uuid,
  import_lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- OAuth mailboxes (..._oauth_mailboxes.sql): a stored refresh token and its provider
  oauth_provider text check (oauth_provider ~ '^[a-z][a-z0-9_-]{0,31}$'),
  reconnect_needed_at timestamptz,
  constraint mailboxes_oauth_provider_needs_oauth2
    check (oauth_provider is null or auth_kind = 'oauth2')
);
create index mailboxes_user_idx on public.mailboxes (user_id);
comment on table public.mailboxes is
  'A user''s IMAP mailboxes. The credential is in Vault (auto_sync.mailbox_credentials); no column here holds it.';
comment on column public.mailboxes.paused_reason is 'Set when imports stop on their own (e.g. repeated authentication failures); cleared by update_mailbox.';
comment on column public.mailboxes.import_run_id is 'The run holding the import lease: one import per mailbox at a time.';
comment on column public.mailboxes.oauth_provider is
  'The provider whose client redeems the stored refresh token (google, microsoft, generic); null: a password, or an access token the app keeps fresh.';
comment on column public.mailboxes.reconnect_needed_at is
  'When the provider refused the grant (revoked, expired, reused): imports skip the mailbox until it is connected again.';

-- Which Vault secret holds a mailbox's password or OAuth access token. Private.
create table auto_sync.mailbox_credentials (
  mailbox_id uuid primary key references public.mailboxes (id) on delete cascade,
  secret_id uuid not null
);
comment on table auto_sync.mailbox_credentials is 'Maps a mailbox to its Vault secret. Deleting the row deletes the secret.';

-- The one bound on a stored credential (password, access or refresh token): what is
-- wrong with it, or null. Used by every function that puts one in Vault.
create function auto_sync.credential_problem(p_credential text) returns text
language sql immutable parallel safe set search_path = ''
as $$
  select case when p_credential is null or length(p_credential) not between 1 and 8192
              then 'must be 1 to 8192 characters' end
$$;
comment on function auto_sync.credential_problem(text) is
  'What is wrong with a credential to store (1 to 8192 characters), or null. The one bound for passwords and tokens.';
revoke execute on function auto_sync.credential_problem(text) from public, anon, authenticated, service_role;

create table public.emails (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  mailbox_id uuid not null references public.mailboxes (id) on delete cascade,
  folder text not null,
  uid_validity bigint not null,
  uid bigint not null,
  message_key text not null,
  message_id text,
  in_reply_to text,
  "references" text[],
  from_address jsonb,
  to_addresses jsonb,
  cc_addresses jsonb,
  subject text,
  sent_at timestamptz,
  internal_date timestamptz,
  flags text[],
  size_bytes bigint,
  body_text text,
  body_truncated boolean not null default false,
  source_truncated boolean not null default false,
  snippet text,
  attachments jsonb not null default '[]',
  parse_error text,
  imported_at timestamptz not null default now(),
  constraint emails_imap_identity unique (mailbox_id, folder, uid_validity, uid),
  constraint emails_message_identity unique (mailbox_id, folder, message_key)
);
create index emails_user_date_idx on public.emails (user_id, internal_date desc);

-- Bodies are the bulk of every insert: lz4 compresses them 2-3x faster than the
-- default pglz (BENCHMARKS.md). Kept optional for servers built without lz4.
do $$
begin
  alter table public.emails alter column body_text set compression lz4;
exception when feature_not_supported or invalid_parameter_value then
  raise notice 'lz4 is not available here: emails.body_text keeps the default compression';
end
$$;
comment on table public.emails is
  'Imported messages. A user reads their own; only the importer writes. One row per message per folder, whatever UIDVALIDITY does.';
comment on column public.emails.message_key is
  'Identity across UIDVALIDITY resets: "mid:" + Message-ID, else "sha256:" + hash of the raw header block.';
comment on column public.emails.source_truncated is 'The message was larger than the per-message byte bound: headers, the text that fit and BODYSTRUCTURE attachment metadata were kept.';

create table auto_sync.folder_state (
  mailbox_id uuid not null references public.mailboxes (id) on delete cascade,
  folder text not null,
  uid_validity bigint not null,
  last_uid bigint not null default 0,
  highest_modseq numeric,
  message_count integer,
  last_checked_at timestamptz,
  resets integer not null default 0,
  last_reset_at timestamptz,
  primary key (mailbox_id, folder)
);
comment on table auto_sync.folder_state is
  'Per mailbox folder: UIDVALIDITY, last imported UID, HIGHESTMODSEQ. Written in the same transaction as the messages it covers.';

alter table public.mailboxes enable row level security;
alter table public.emails enable row level security;
alter table auto_sync.mailbox_credentials enable row level security;
alter table auto_sync.folder_state enable row level security;

create policy "Users can read their own mailboxes" on public.mailboxes
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can read their own emails" on public.emails
  for select to authenticated using (user_id = (select auth.uid()));

-- Supabase grants the API roles everything in public: keep reads, take the rest back.
revoke all on public.mailboxes, public.emails from anon, authenticated, public;
revoke all on sequence public.emails_id_seq from anon, authenticated, public;
grant select on public.mailboxes, public.emails to authenticated;
revoke all on auto_sync.mailbox_credentials, auto_sync.folder_state from public, anon, authenticated;
grant select on auto_sync.folder_state to service_role;

-- Deleting a credential row (directly, or by cascade from a mailbox or a user)
-- deletes its Vault secret, so no orphaned password stays behind.
create function auto_sync.delete_mailbox_secret() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from vault.secrets where id = old.secret_id;
  return old;
end
$$;
create trigger delete_mailbox_secret after delete on auto_sync.mailbox_credentials
  for each row execute function auto_sync.delete_mailbox_secret();
revoke execute on function auto_sync.delete_mailbox_secret() from public, anon, authenticated, service_role;
