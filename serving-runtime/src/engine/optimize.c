/* optimize: fusions (filled in below). */
#include "graph.h"

kinfer_status *graph__optimize(graph *g)
{
    (void)g;
    return NULL;
}
