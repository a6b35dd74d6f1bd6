-- 0006: how the inbound SMPP server treats the parts of a concatenated message from this login:
-- 'reassemble' (one message, the default) or 'parts' (each part its own message, sent on with its
-- concatenation info so the handset still joins them; each part gets its own receipt).
ALTER TABLE smpp_credentials ADD COLUMN concatenated TEXT NOT NULL DEFAULT 'reassemble';
