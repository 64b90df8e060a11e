/* PROJ's C API run hard, through paths where PROJ throws C++ exceptions that its C API
 * catches (an unknown EPSG code, a malformed PROJ string, a bad WKT), plus real
 * transformations through proj.db.  Linked against a libproj.so that carries PROJ and a
 * static C++ runtime (zig): a throw the C API could not catch would abort the process. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <proj.h>

int main(void) {
    PJ_CONTEXT *ctx = proj_context_create();
    proj_log_level(ctx, PJ_LOG_NONE);
    const int rounds = 300;
    int refused = 0, transforms = 0;
    double x = 0.0, y = 0.0;
    for (int i = 0; i < rounds; i++) {
        /* NoSuchAuthorityCodeException inside the database lookup */
        PJ *bad = proj_create(ctx, "EPSG:999999");
        if (bad == NULL) refused++; else proj_destroy(bad);
        /* a WKT parse error */
        bad = proj_create(ctx, "GEOGCRS[\"x\",DATUM[");
        if (bad == NULL) refused++; else proj_destroy(bad);
        /* a PROJ string naming no operation */
        bad = proj_create(ctx, "+proj=nosuchprojection");
        if (bad == NULL) refused++; else proj_destroy(bad);
        /* a real transformation, CRS objects from proj.db */
        PJ *op = proj_create_crs_to_crs(ctx, "EPSG:4326", "EPSG:3857", NULL);
        if (op != NULL) {
            PJ_COORD c = proj_coord(48.8566, 2.3522, 0, 0);
            PJ_COORD r = proj_trans(op, PJ_FWD, c);
            if (r.xy.x != HUGE_VAL) { transforms++; x = r.xy.x; y = r.xy.y; }
            proj_destroy(op);
        }
    }
    const char *db = proj_context_get_database_path(ctx);
    PJ_INFO info = proj_info();
    printf("projstress %s: %d rounds, %d refused, %d transforms, Paris -> (%.1f, %.1f), db %s\n",
           info.release ? info.version : "?", rounds, refused, transforms, x, y,
           db ? "found" : "missing");
    proj_context_destroy(ctx);
    return !(refused == 3 * rounds && transforms == rounds && db != NULL);
}
