-- 010_heartbeat_order: the heartbeat locks its rows in id order (issue 6).
--
-- A worker writes the terminal transitions of several of its jobs in one
-- transaction (worker/terminal_commit.c), locking their rows in id order.
-- The heartbeat of the same worker updates the same rows in one statement;
-- in 006 it locked them in whatever order its plan read them, so the two
-- could deadlock, and PostgreSQL would fail one of them after
-- deadlock_timeout. Locking in id order here too makes that impossible.
CREATE OR REPLACE FUNCTION agentgate_heartbeat(p_ids uuid[], p_worker text)
RETURNS TABLE (o_id text, o_cancel_requested boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    WITH locked AS (
        SELECT j.id FROM jobs j
         WHERE j.id = ANY (p_ids) AND j.status = 'running' AND j.worker_id = p_worker
         ORDER BY j.id
           FOR UPDATE)
    UPDATE jobs j SET heartbeat_at = now()
      FROM locked l
     WHERE j.id = l.id
    RETURNING j.id::text, j.cancel_requested_at IS NOT NULL
$$;
