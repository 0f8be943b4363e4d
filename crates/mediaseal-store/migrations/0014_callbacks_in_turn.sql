-- A call's status callbacks go out in turn: a pending callback waits while an earlier pending one
-- of the same resource exists (the outbox's "in turn" check). This index answers that check
-- without scanning every pending callback of the node's outbox.

CREATE INDEX callbacks_in_turn ON callbacks (resource_sid, state, created_at);
