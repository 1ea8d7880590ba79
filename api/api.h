/* What the REST service's route files share: the application context handed to
 * every handler, and the functions that register each group of routes. */
#ifndef EIE_API_H
#define EIE_API_H

#include <ulfius.h>

#include "db_pool.h"

typedef struct api_context {
    db_pool *db;
} api_context;

/* Each returns 0, or -1 when ulfius refused a route. */
int routes_health_register(struct _u_instance *instance, api_context *ctx);
int routes_analytics_register(struct _u_instance *instance, api_context *ctx);

#endif
