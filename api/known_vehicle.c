/* Whether a vehicle is known to the service, for the routes that answer 404
 * for one that never reported; see api.h. */
#include <string.h>

#include "api.h"
#include "respond.h"

/* Known: it has a state or an assignment (an assignment may come first). */
static const char *const known_sql =
    "SELECT EXISTS (SELECT 1 FROM vehicle_state WHERE vehicle_id = $1)"
    "    OR EXISTS (SELECT 1 FROM vehicle_meter_assignment WHERE vehicle_id = $1)";

int api_vehicle_known(api_context *ctx, struct _u_response *resp, const char *vehicle_id)
{
    const char *params[] = {vehicle_id};
    PGresult *res = api_query(ctx, resp, "known vehicle", known_sql, 1, params);
    if (!res)
        return -1;
    bool known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (known)
        return 1;
    respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    return 0;
}
