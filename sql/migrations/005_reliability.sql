-- 005_reliability: what leases, retries and reconciliation need.
--
-- queued_at is when a job last became queued (submitted, retried, handed
-- back or reaped). Reconciliation only re-enqueues jobs queued for longer
-- than a short grace, so it never races the gateway's or a worker's own
-- enqueue of a job it has just queued.
ALTER TABLE jobs ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX jobs_queued ON jobs (queued_at) WHERE status = 'queued';
