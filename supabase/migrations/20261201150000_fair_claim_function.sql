-- The fair choice between owners as a function (issue 18), so that the claim statements stay as
-- cheap as the plain SKIP LOCKED claim whenever fairness cannot change the answer. Safe to apply twice.
--
-- The claims (worker/db/queries_claim.py) call it only when the plain-order head may not be the
-- fair choice: more than one owner has pending jobs and the head's owner already runs one, or a
-- per-owner cap is set. Kept out of the statements because Postgres starts up every node of a
-- plan, run or not: the owner scan inlined in the claim cost every claim half as much again, in
-- the common case of one busy owner too. A PL/pgSQL body is planned once per connection and
-- started only when called.
--
-- Returns up to `wanted` due pending jobs of `claim_types` (null: all), locked FOR UPDATE SKIP
-- LOCKED, in the fair order: priority first; then the owner with the fewest jobs processing now
-- (not counting `finishing`, jobs the calling statement completes), the n-th job of an owner
-- ranked as if the n - 1 before it already ran, so that a round takes turns; then the oldest.
-- Under `cap` (WORKER_MAX_RUNNING_PER_USER) an owner's n-th job passes only if the owner has n
-- free slots (media_jobs_owner_slots, under its per-owner lock), and each owner at the cap has its
-- next job staged 'waiting for owner cap' (once; rows in flight are passed). With no cap and no
-- fair choice unlocked, the next unlocked due jobs in plain order.
create or replace function public.media_jobs_fair_claim(claim_types text[], cap integer, wanted integer,
                                                        finishing uuid[])
returns setof uuid
language plpgsql volatile set search_path = '' as $$
begin
  if wanted < 1 then
    return;
  end if;
  return query
  with recursive
  -- Owners with pending jobs: a skip scan of the owner index, one probe per owner (ends on a null).
  owners(owner) as (
    (select coalesce(m.user_id, '00000000-0000-0000-0000-000000000000'::uuid) from public.media_jobs m
     where m.status = 'pending' order by 1 limit 1)
    union all
    select (select coalesce(m.user_id, '00000000-0000-0000-0000-000000000000'::uuid) from public.media_jobs m
            where m.status = 'pending'
              and coalesce(m.user_id, '00000000-0000-0000-0000-000000000000'::uuid) > o.owner
            order by 1 limit 1)
    from owners o where o.owner is not null),
  -- Jobs processing now, by owner (the running-owner index: one row per running job).
  running(owner, jobs) as (
    select coalesce(m.user_id, '00000000-0000-0000-0000-000000000000'::uuid), count(*) from public.media_jobs m
    where m.status = 'processing' and m.id <> all(coalesce(finishing, '{}')) group by 1),
  -- Each owner's next `wanted` due jobs in the owner's own order, with the load each would start at.
  nexts as (
    select x.*, x.running + x.nth - 1 as load from (
      select h.*, o.owner, coalesce(r.jobs, 0) as running,
             row_number() over (partition by o.owner order by h.priority desc, h.run_at, h.created_at) as nth
      from owners o left join running r using (owner)
      cross join lateral (
        select m.id, m.priority, m.run_at, m.created_at from public.media_jobs m
        where m.status = 'pending' and m.run_at <= now()
          and coalesce(m.user_id, '00000000-0000-0000-0000-000000000000'::uuid) = o.owner
          and (claim_types is null or m.type = any(claim_types))
        order by m.priority desc, m.run_at, m.created_at
        limit wanted) h) as x),
  held as (
    update public.media_jobs j set stage = 'waiting for owner cap'
    where cap is not null and j.id in (
      select m.id from nexts x join public.media_jobs m on m.id = x.id
      where x.load >= cap and m.status = 'pending' and m.stage is distinct from 'waiting for owner cap'
      for update of m skip locked))
  select l.id
  from (select * from nexts order by priority desc, load, run_at, created_at offset 0) x
  cross join lateral (
    select m.id from public.media_jobs m where m.id = x.id and m.status = 'pending' for update skip locked) l
  where cap is null
     or (x.load < cap and x.nth <= public.media_jobs_owner_slots(x.owner, cap, finishing))
  limit wanted;
  -- Every owner's next jobs are locked by other claimers (one owner's busy queue): the next
  -- unlocked due jobs in plain order, as SKIP LOCKED finds them. Under a cap every claim takes the gate.
  if not found and cap is null then
    return query
    select m.id from public.media_jobs m
    where m.status = 'pending' and m.run_at <= now() and (claim_types is null or m.type = any(claim_types))
    order by m.priority desc, m.run_at, m.created_at
    limit wanted
    for update skip locked;
  end if;
end $$;

comment on function public.media_jobs_fair_claim(text[], integer, integer, uuid[]) is
  'The media worker''s fair claim between owners: up to `wanted` due jobs, locked. Worker only.';

-- Supabase grants new functions to anon and authenticated (PostgREST would expose it as an RPC).
revoke all on function public.media_jobs_fair_claim(text[], integer, integer, uuid[]) from public, anon, authenticated;
grant execute on function public.media_jobs_fair_claim(text[], integer, integer, uuid[]) to service_role;
