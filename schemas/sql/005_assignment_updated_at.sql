-- When each current assignment last changed, so that the API's cache of the
-- latest state can pick up what changed since it last looked.
ALTER TABLE vehicle_assignment_current ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
