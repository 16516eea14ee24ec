-- pgTAP: the SQL side of the wire format against the shared vector file
-- (tests/fixtures/wire_vectors.json), which the TypeScript tests assert too:
--   limits      auto_sync.wire_limit(name) equals each limit of the file
--   signatures  claims -> auto_sync.request_claims(...)::text -> the exact body bytes;
--               auto_sync.sign(id, timestamp, body, keys) -> the exact header value
--   keys        auto_sync.signing_key_bytes(secret) accepts exactly the keys marked
--               accepted (the function's parseSecret accepts the same ones)
--
-- The file is read with a psql backquote, from the repository root (as ./scripts/test
-- runs pg_prove) or from supabase/tests (supabase test db mounts only that folder: then
-- every test is skipped).
begin;
\ir support/test_helpers.psql

\set vectors `cat tests/fixtures/wire_vectors.json 2>/dev/null || cat ../../tests/fixtures/wire_vectors.json 2>/dev/null || echo null`
create temp table t_vectors on commit drop as select (:'vectors')::jsonb as doc;
select (select jsonb_typeof(doc) = 'object' from t_vectors) as have_vectors \gset

\if :have_vectors
select plan(
  6 + 3 * (select jsonb_array_length(doc -> 'signatures') from t_vectors)
    + (select jsonb_array_length(doc -> 'keys') from t_vectors));

-------------------------------------------------------------------------------
-- Limits: one home per language, equal
-------------------------------------------------------------------------------
select is(auto_sync.wire_limit(l.name), (v.doc -> 'limits' ->> l.name)::integer,
          format('wire_limit(%L) is the vector file''s', l.name))
  from t_vectors v,
       unnest(array['signing_key_min_bytes', 'signing_key_max_bytes', 'max_signing_keys',
                    'request_lifetime_seconds'])
         as l (name);

select is(
  (select array_agg(c.name order by c.name) from (
     select split_part(split_part(pg_get_constraintdef(k.oid), 'wire_limit(''', 2), '''', 1) as name
       from pg_constraint k
      where k.conrelid = 'auto_sync.settings'::regclass and pg_get_constraintdef(k.oid) like '%wire_limit(%') c),
  array['request_lifetime_seconds', 'request_lifetime_seconds'],
  'settings.request_ttl and ledger_retention are bounded by wire_limit(''request_lifetime_seconds'')');

-------------------------------------------------------------------------------
-- Signatures: claims -> exact bytes -> header value
-------------------------------------------------------------------------------
create temp table t_signatures on commit drop as
  select s.value ->> 'name' as name, s.value -> 'claims' as claims, s.value ->> 'id' as id,
         (s.value ->> 'timestamp')::bigint as ts, s.value ->> 'body' as body,
         s.value ->> 'signature' as signature,
         array(select auto_sync.signing_key_bytes(k) from jsonb_array_elements_text(s.value -> 'keys') k) as keys
    from t_vectors v, jsonb_array_elements(v.doc -> 'signatures') s;

select is(case when jsonb_typeof(s.claims) = 'object' then s.claims::text else s.body end, s.body,
          format('%s: jsonb::text of the claims is the body, byte for byte', s.name))
  from t_signatures s;

select is(case when jsonb_typeof(s.claims) = 'object'
               then auto_sync.request_claims((s.claims ->> 'sub')::uuid, (s.claims ->> 'run_id')::uuid,
                                             (s.claims ->> 'iat')::bigint,
                                             (s.claims ->> 'exp')::bigint - (s.claims ->> 'iat')::bigint)::text
               else s.body end,
          s.body,
          format('%s: auto_sync.request_claims builds the same body', s.name))
  from t_signatures s;

select is(auto_sync.sign(s.id, s.ts, s.body, s.keys), s.signature,
          format('%s: auto_sync.sign gives the header value', s.name))
  from t_signatures s;

-------------------------------------------------------------------------------
-- Keys: SQL accepts exactly what the function accepts
-------------------------------------------------------------------------------
select is(auto_sync.signing_key_bytes(k.value ->> 'secret') is not null, (k.value ->> 'accepted')::boolean,
          format('key %s: %s', k.value ->> 'why',
                 case when (k.value ->> 'accepted')::boolean then 'accepted' else 'refused' end))
  from t_vectors v, jsonb_array_elements(v.doc -> 'keys') k;

select is(length(auto_sync.signing_key_bytes('whsec_' || encode(extensions.gen_random_bytes(32), 'base64'))), 32,
          'a fresh 32-byte key decodes to its 32 bytes');

\else
select plan(1);
select skip('the vector file is not reachable from here (supabase test db mounts only supabase/tests); '
            'run pg_prove from the repository root', 1);
\endif

select * from finish();
rollback;
