/* Whether a vehicle is known to the service, for the routes that answer 404
 * for one that never reported; see api.h. */
#include "api.h"
#include "data.h"
#include "respond.h"

int api_vehicle_known(api_context *ctx, struct _u_response *resp, const char *vehicle_id)
{
    int known = data_vehicle_known(ctx, resp, vehicle_id);
    if (known == 0)
        respond_error(resp, 404, "not_found", "no vehicle with this id has reported");
    return known;
}
