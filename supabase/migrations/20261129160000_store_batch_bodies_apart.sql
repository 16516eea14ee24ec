-- store_batch takes the message bodies apart from the JSON of the batch.
--
-- Why: bodies are nearly all of a batch's bytes, and as jsonb they are escaped by
-- the importer and unescaped again by Postgres, character by character. As plain
-- text parameters neither happens: a batch of 25 benchmark messages (~33 KB each)
-- went from ~0.5-0.7 to ~0.25 ms per message, round trip included (BENCHMARKS.md).
--
-- p_bodies[i] is the body_text of the i-th element of p_messages; when p_bodies is
-- null (or shorter) body_text is read from the JSON as before, so older callers keep
-- working. Everything else is unchanged from 20261129130000_mail_import.sql.

drop function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer);

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

revoke execute on function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer, text[]) from public, anon, authenticated;
grant execute on function auto_sync.store_batch(uuid, text, bigint, jsonb, bigint, numeric, integer, text[]) to service_role;
