-- The assignment in force for each vehicle, kept by the hot consumer next to the
-- history, so "which meter is V1 on" and "which vehicles are on M1" are index
-- lookups rather than a scan of every vehicle's history.
CREATE TABLE vehicle_assignment_current (
    vehicle_id text COLLATE "C" PRIMARY KEY,
    meter_id   text COLLATE "C" NOT NULL,
    valid_from timestamptz NOT NULL
);
CREATE INDEX vehicle_assignment_current_meter ON vehicle_assignment_current (meter_id);

INSERT INTO vehicle_assignment_current (vehicle_id, meter_id, valid_from)
SELECT DISTINCT ON (vehicle_id) vehicle_id, meter_id, valid_from
FROM vehicle_meter_assignment
ORDER BY vehicle_id, valid_from DESC;
