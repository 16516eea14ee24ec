-- Signed auto-sync: when a schedule runs next. One rule, one function: every statement
-- that writes auto_sync.schedules.next_run_at takes its value from auto_sync.next_run_at().
--
--   event         when                                      next_run_at
--   enabled       a schedule is created or re-enabled       greatest(now(), last run + every):
--                                                           due at once when new, never sooner
--                                                           than one interval after the user's
--                                                           last run (disable + enable is no way
--                                                           around the interval)
--   interval_set  enable() on an enabled schedule           least(next_run_at, now() + every):
--                                                           a new interval never delays a run
--   dispatched    dispatch() sent the request               now() + every * (1 + jitter)
--   failed        a scheduled run failed, was rejected or   now() + least(every, 1 min * 2^(n-1))
--                 lost, or received nothing (n in a row)    * (1 + jitter): capped backoff
--   follow_up     a scheduled run stored new mail and has   least(next_run_at, now() + 1 minute)
--                 more to import                            (never later than it was)
--   broken        the schedule's values break dispatch()    now() + 1 hour: out of every tick's way
--                 or the run bookkeeping
--   null          nothing to change                         next_run_at as it is
--
-- jitter = p_jitter_fraction * random() (settings.jitter_fraction), spreading load. Which
-- event a run's end is (follow_up or failed or none) is decided by
-- auto_sync.record_outcomes(), in ..._auto_sync_run_lifecycle.sql.

create function auto_sync.next_run_at(
  p_event text,
  p_every interval,
  p_next_run_at timestamptz,
  p_jitter_fraction numeric default 0,
  p_failures integer default 0,
  p_last_run_at timestamptz default null
) returns timestamptz
language plpgsql volatile set search_path = ''
as $$
begin
  case p_event
    when 'enabled' then
      return greatest(now(), p_last_run_at + p_every);
    when 'interval_set' then
      return least(p_next_run_at, now() + p_every);
    when 'dispatched' then
      return now() + p_every * (1 + p_jitter_fraction * random());
    when 'failed' then
      return now() + least(p_every, interval '1 minute' * power(2, least(greatest(p_failures, 1) - 1, 20)))
                     * (1 + p_jitter_fraction * random());
    when 'follow_up' then
      return least(p_next_run_at, now() + interval '1 minute');
    when 'broken' then
      return now() + interval '1 hour';
    else
      if p_event is null then
        return p_next_run_at;
      end if;
      -- a programming error: fail loudly instead of guessing a time
      raise exception 'Cannot compute the next run: unknown event "%"', p_event using errcode = '22023';
  end case;
end
$$;
comment on function auto_sync.next_run_at(text, interval, timestamptz, numeric, integer, timestamptz) is
  'The one rule for a schedule''s next run, per event: enabled | interval_set | dispatched | failed (capped backoff, p_failures in a row) | follow_up | broken | null (unchanged). Every writer of schedules.next_run_at calls it.';
revoke execute on function auto_sync.next_run_at(text, interval, timestamptz, numeric, integer, timestamptz)
  from public, anon, authenticated, service_role;
