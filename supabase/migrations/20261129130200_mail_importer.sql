-- Mail import: the functions the importer calls. The Edge Functions connect as
-- `postgres` (SUPABASE_DB_URL), the only role that may execute these: not even
-- service_role, whose API key is far more widely held (mailbox_credential returns a
-- password).
--   auto_sync.import_targets(user), auto_sync.mailbox_credential(mailbox)
--   auto_sync.claim_mailbox / release_mailbox (one import per mailbox at a time)
--   auto_sync.folder_states(mailbox), auto_sync.reset_folder(...), auto_sync.touch_folder(...)
--   auto_sync.store_batch(...) (messages + folder state, one transaction)
--   auto_sync.record_mailbox_outcome(...)

create function auto_sync.import_targets(p_user_id uuid)
returns setof public.mailboxes
language sql stable security definer set search_path = ''
as $$
  select * from public.mailboxes
   where user_id = p_user_id and enabled
   order by created_at
$$;
comment on function auto_sync.import_targets(uuid) is 'Importer: the user''s enabled mailboxes, paused ones included so a run can say why it did nothing.';

create function auto_sync.mailbox_credential(p_mailbox_id uuid) returns text
language sql stable security definer set search_path = ''
as $$
  select s.decrypted_secret
    from auto_sync.mailbox_credentials c
    join vault.decrypted_secrets s on s.id = c.secret_id
   where c.mailbox_id = p_mailbox_id
$$;
comment on function auto_sync.mailbox_credential(uuid) is 'Importer only: the mailbox''s password or access token from Vault.';

create function auto_sync.claim_mailbox(p_mailbox_id uuid, p_run_id uuid, p_lease interval)
returns boolean
language sql volatile security definer set search_path = ''
as $$
  with claimed as (
    update public.mailboxes
       set import_run_id = p_run_id, import_lease_until = now() + p_lease
     where id = p_mailbox_id
       and (import_run_id is null or import_run_id = p_run_id or import_lease_until < now())
    returning 1
  )
  select exists (select 1 from claimed)
$$;
comment on function auto_sync.claim_mailbox(uuid, uuid, interval) is
  'Importer: take the mailbox''s import lease for a run. False while another run holds an unexpired lease. The lease expires, so a crashed import never blocks forever.';

create function auto_sync.release_mailbox(p_mailbox_id uuid, p_run_id uuid) returns void
language sql volatile security definer set search_path = ''
as $$
  update public.mailboxes set import_run_id = null, import_lease_until = null
   where id = p_mailbox_id and import_run_id = p_run_id
$$;

create function auto_sync.folder_states(p_mailbox_id uuid) returns setof auto_sync.folder_state
language sql stable security definer set search_path = ''
as $$ select * from auto_sync.folder_state where mailbox_id = p_mailbox_id $$;

-- UIDVALIDITY changed: the old UIDs mean nothing now. Start the folder over;
-- store_batch then re-maps the existing rows by message_key instead of duplicating.
create function auto_sync.reset_folder(p_mailbox_id uuid, p_folder text, p_uid_validity bigint)
returns void
language sql volatile security definer set search_path = ''
as $$
  insert into auto_sync.folder_state (mailbox_id, folder, uid_validity, last_uid, resets, last_reset_at)
  values (p_mailbox_id, p_folder, p_uid_validity, 0, 1, now())
  on conflict (mailbox_id, folder) do update
     set uid_validity = excluded.uid_validity, last_uid = 0, highest_modseq = null,
         resets = auto_sync.folder_state.resets + 1, last_reset_at = now()
$$;

-- One batch of parsed messages and the folder state that covers it, atomically.
-- Returns how many rows were inserted, re-mapped after a UIDVALIDITY reset, or
-- skipped as already present.
--
-- The bodies come apart from the JSON of the batch: p_bodies[i] is the body_text of
-- the i-th element of p_messages (when p_bodies is null or shorter, body_text is read
-- from the JSON). Bodies are nearly all of a batch's bytes; as jsonb they would be
-- escaped by the importer and unescaped again by Postgres, character by character.
-- As text parameters neither happens (~0.5-0.7 -> ~0.25 ms per message, BENCHMARKS.md).
create function auto_sync.store_batch(
  p_mailbox_id uuid,
  p_folder text,
  p_uid_validity bigint,
  p_messages jsonb,
  p_last_uid bigint,
  p_highest_modseq numeric default null,
  p_message_count integer default null,
  p_bodies text[] default null
) returns table (inserted integer, remapped integer, duplicates integer)
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_user_id uuid;
  v_total integer := jsonb_array_length(p_messages);
begin
  select user_id into strict v_user_id from public.mailboxes where id = p_mailbox_id;

  with incoming as (
    select distinct on (m.message_key) m.*, coalesce(p_bodies[m.position], m.body_text) as body
      from rows from (jsonb_to_recordset(p_messages) as (
        uid bigint, message_key text, message_id text, in_reply_to text, "references" text[],
        from_address jsonb, to_addresses jsonb, cc_addresses jsonb, subject text,
        sent_at timestamptz, internal_date timestamptz, flags text[], size_bytes bigint,
        body_text text, body_truncated boolean, source_truncated boolean, snippet text,
        attachments jsonb, parse_error text)) with ordinality as m (
        uid, message_key, message_id, in_reply_to, "references", from_address, to_addresses,
        cc_addresses, subject, sent_at, internal_date, flags, size_bytes, body_text,
        body_truncated, source_truncated, snippet, attachments, parse_error, position)
     order by m.message_key, m.uid
  ), written as (
    insert into public.emails as e (
      user_id, mailbox_id, folder, uid_validity, uid, message_key, message_id, in_reply_to,
      "references", from_address, to_addresses, cc_addresses, subject, sent_at, internal_date,
      flags, size_bytes, body_text, body_truncated, source_truncated, snippet, attachments, parse_error)
    select v_user_id, p_mailbox_id, p_folder, p_uid_validity, i.uid, i.message_key, i.message_id,
           i.in_reply_to, i."references", i.from_address, i.to_addresses, i.cc_addresses, i.subject,
           i.sent_at, i.internal_date, i.flags, i.size_bytes, i.body,
           coalesce(i.body_truncated, false), coalesce(i.source_truncated, false), i.snippet,
           coalesce(i.attachments, '[]'), i.parse_error
      from incoming i
    on conflict on constraint emails_message_identity do update
       set uid_validity = excluded.uid_validity, uid = excluded.uid, flags = excluded.flags
     where e.uid_validity <> excluded.uid_validity
    returning (xmax = 0) as is_new
  )
  select count(*) filter (where is_new), count(*) filter (where not is_new)
    into inserted, remapped
    from written;
  duplicates := v_total - inserted - remapped;

  insert into auto_sync.folder_state (mailbox_id, folder, uid_validity, last_uid, highest_modseq, message_count, last_checked_at)
  values (p_mailbox_id, p_folder, p_uid_validity, p_last_uid, p_highest_modseq, p_message_count, now())
  on conflict (mailbox_id, folder) do update
     set uid_validity = excluded.uid_validity,
         last_uid = greatest(auto_sync.folder_state.last_uid, excluded.last_uid),
         highest_modseq = coalesce(excluded.highest_modseq, auto_sync.folder_state.highest_modseq),
         message_count = coalesce(excluded.message_count, auto_sync.folder_state.message_count),
         last_checked_at = now();
  return next;
end
$$;

comment on function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer, text[]) is
  'Importer: insert a batch of messages (idempotent by IMAP identity and by message_key) and advance the folder state in the same transaction. p_bodies, when given, holds each message''s body_text in the order of p_messages.';

-- A folder checked with nothing new: remember when, without touching last_uid.
create function auto_sync.touch_folder(
  p_mailbox_id uuid, p_folder text, p_uid_validity bigint, p_highest_modseq numeric, p_message_count integer
) returns void
language sql volatile security definer set search_path = ''
as $$
  insert into auto_sync.folder_state (mailbox_id, folder, uid_validity, highest_modseq, message_count, last_checked_at)
  values (p_mailbox_id, p_folder, p_uid_validity, p_highest_modseq, p_message_count, now())
  on conflict (mailbox_id, folder) do update
     set highest_modseq = coalesce(excluded.highest_modseq, auto_sync.folder_state.highest_modseq),
         message_count = coalesce(excluded.message_count, auto_sync.folder_state.message_count),
         last_checked_at = now()
$$;

-- After each mailbox: its error (or none), and authentication failures counted so
-- that a wrong password pauses the mailbox instead of hammering the server.
create function auto_sync.record_mailbox_outcome(
  p_mailbox_id uuid, p_error text default null, p_auth_failed boolean default false
) returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_failures integer;
  v_paused text;
begin
  update public.mailboxes
     set last_error = p_error,
         last_synced_at = case when p_error is null then now() else last_synced_at end,
         consecutive_auth_failures = case when p_auth_failed then consecutive_auth_failures + 1 else 0 end,
         updated_at = now()
   where id = p_mailbox_id
  returning consecutive_auth_failures into v_failures;
  if v_failures >= 3 then
    v_paused := format('Paused after %s failed logins: update the password or token to resume', v_failures);
    update public.mailboxes set paused_reason = v_paused where id = p_mailbox_id;
  end if;
  return v_paused;
end
$$;
comment on function auto_sync.record_mailbox_outcome(uuid, text, boolean) is
  'Importer: record a mailbox''s last error; the third authentication failure in a row pauses it. Returns the pause reason, if paused.';

revoke execute on function auto_sync.import_targets(uuid) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.mailbox_credential(uuid) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.claim_mailbox(uuid, uuid, interval) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.release_mailbox(uuid, uuid) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.folder_states(uuid) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.reset_folder(uuid, text, bigint) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer, text[]) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.touch_folder(uuid, text, bigint, numeric, integer) from public, anon, authenticated, service_role;
revoke execute on function auto_sync.record_mailbox_outcome(uuid, text, boolean) from public, anon, authenticated, service_role;
