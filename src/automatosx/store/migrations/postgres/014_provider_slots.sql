-- Per-provider concurrency across all `ax worker` processes (`AX_PROVIDER_LIMITS`, e.g.
-- `claude-code=4`): a provider limited to N calls has N slot rows; a worker holds one for
-- each call it makes (`holder`, renewed on its heartbeat) and frees it when the call ends.
-- A slot whose holder stopped renewing (a dead worker) is free again once it expires.

CREATE TABLE workflow_provider_slots (
    provider TEXT NOT NULL,
    slot INTEGER NOT NULL,
    holder TEXT,
    expires_at DOUBLE PRECISION,
    PRIMARY KEY (provider, slot)
);
