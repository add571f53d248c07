"""The SQL of storage retention (issue 20): what housekeeping may delete from the worker's two buckets,
the job rows that follow their outputs, and what each bucket holds. One literal per statement.

storage.objects is only ever read here. Objects are deleted through the Storage API, which removes
the row and the bytes together; deleting the row would leave the bytes behind, unbilled for nobody.
"""

# Abandoned uploads, Supabase: the next batch of objects of the uploads bucket created before the
# cutoff (the retention plus one lease) that no pending or processing job names as its input. The job
# check is in this statement, so a job inserted before the batch is selected keeps its input.
OLD_UPLOADS = """
select o.name as path,
       coalesce((o.metadata->>'size')::bigint, 0) as size,          -- Storage records each object's size
       extract(epoch from now() - o.created_at) as age_seconds
from storage.objects o
where o.bucket_id = %(bucket)s
  and o.created_at < now() - make_interval(secs => %(older_than_seconds)s)
  and o.name > %(after)s                                           -- keyset: after the previous batch
  and not exists (                                                 -- named by a live job: kept, whatever its age
        select 1 from public.media_jobs j
        where j.status in ('pending', 'processing')
          and coalesce(j.payload #>> '{input,bucket}', 'media-uploads') = o.bucket_id
          and j.payload #>> '{input,path}' = o.name)
order by o.name                                                    -- the (bucket_id, name) index order
limit %(limit)s
"""

# Abandoned uploads, local folders: of these paths in the uploads bucket, those no pending or processing
# job names as its input (the folder listing cannot join; this runs right before the batch is deleted).
UNNAMED_UPLOADS = """
select p.path
from unnest(%(paths)s::text[]) as p(path)
where not exists (
        select 1 from public.media_jobs j
        where j.status in ('pending', 'processing')
          and coalesce(j.payload #>> '{input,bucket}', 'media-uploads') = %(bucket)s
          and j.payload #>> '{input,path}' = p.path)
"""

# Outputs follow jobs: the next batch of finished jobs past their retention (the rule of DELETE_OLD_JOBS),
# with the folder their outputs live in, {owner}/{job_id}/, owner 'anonymous' when the job has none.
EXPIRED_JOBS = """
select id,
       coalesce(user_id::text, 'anonymous') || '/' || id::text || '/' as folder,
       extract(epoch from now() - completed_at) as age_seconds
from public.media_jobs
where ((status in ('completed', 'cancelled')
        and completed_at < now() - make_interval(secs => %(retention_seconds)s))
    or (status = 'failed'
        and completed_at < now() - make_interval(secs => %(failed_retention_seconds)s)))
  and id > %(after)s                                               -- keyset: after the previous batch
order by id
limit %(limit)s
"""

# Outputs follow jobs, Supabase: the objects of a bucket under any of these folder patterns ('a/b/%').
OBJECTS_UNDER = """
select o.name as path,
       coalesce((o.metadata->>'size')::bigint, 0) as size,
       extract(epoch from now() - o.created_at) as age_seconds
from storage.objects o
where o.bucket_id = %(bucket)s
  and o.name like any(%(patterns)s::text[])
order by o.name
"""

# Outputs follow jobs: delete the rows whose outputs are gone. The expiry is checked again, so a job
# retried since it was selected stays.
DELETE_EXPIRED_JOBS = """
delete from public.media_jobs
where id = any(%(ids)s::uuid[])
  and ((status in ('completed', 'cancelled')
        and completed_at < now() - make_interval(secs => %(retention_seconds)s))
    or (status = 'failed'
        and completed_at < now() - make_interval(secs => %(failed_retention_seconds)s)))
returning id
"""

# `cleanup --dry-run` with outputs kept: how many rows DELETE_OLD_JOBS would delete now.
COUNT_OLD_JOBS = """
select count(*) as jobs
from public.media_jobs
where (status in ('completed', 'cancelled')
       and completed_at < now() - make_interval(secs => %(retention_seconds)s))
   or (status = 'failed'
       and completed_at < now() - make_interval(secs => %(failed_retention_seconds)s))
"""

# `status` and the dashboard, Supabase: objects and bytes held in each of these buckets.
BUCKET_USAGE = """
select bucket_id as bucket, count(*) as objects,
       coalesce(sum((metadata->>'size')::bigint), 0) as bytes
from storage.objects
where bucket_id = any(%(buckets)s::text[])
group by bucket_id
"""
