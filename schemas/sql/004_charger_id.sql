-- Vehicle reading schema v2 adds the charger the vehicle is plugged into, when
-- known; readings of v1 (and v2 readings without it) store NULL.
ALTER TABLE vehicle_history ADD COLUMN charger_id text;
ALTER TABLE vehicle_state ADD COLUMN charger_id text;
