-- Webhook outbox: when the job's completed/failed/cancelled event was delivered (or given
-- up on). A finished job with webhook_sent_at null is re-sent by any worker, so an event is
-- delivered at least once even if its worker dies mid-delivery. Expand-only, idempotent.

alter table public.media_jobs add column if not exists webhook_sent_at timestamptz;

comment on column public.media_jobs.webhook_sent_at is
  'When the worker delivered (or gave up on) the signed webhook for this job''s final state.';
