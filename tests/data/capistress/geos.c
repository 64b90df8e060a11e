/* GEOS's C API run hard, through paths where GEOS throws C++ exceptions that libgeos_c
 * catches and reports (ParseException, IllegalArgumentException, TopologyException).
 * Linked against a libgeos_c.so that carries GEOS and a static C++ runtime (zig): if
 * the throw and the catch used two copies of the runtime (or the unwinder could not find
 * the library's frames), the process would abort instead of printing the counts. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <geos_c.h>

static int parse_errors, argument_errors, other_errors;

static void on_error(const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (strstr(text, "ParseException")) parse_errors++;
    else if (strstr(text, "IllegalArgumentException")) argument_errors++;
    else other_errors++;
}

static void on_notice(const char *fmt, ...) { (void)fmt; }

int main(void) {
    GEOSContextHandle_t h = GEOS_init_r();
    GEOSContext_setErrorHandler_r(h, (GEOSMessageHandler)on_error);
    GEOSContext_setNoticeHandler_r(h, (GEOSMessageHandler)on_notice);
    GEOSWKTReader *reader = GEOSWKTReader_create_r(h);
    const int rounds = 2000;
    int nulls = 0, unions = 0;
    double area = 0.0;
    for (int i = 0; i < rounds; i++) {
        /* thrown inside the WKT parser, caught by the C API */
        if (GEOSWKTReader_read_r(h, reader, "POLYGON((0 0, 1 1") == NULL) nulls++;
        /* a ring of 2 points: thrown by the geometry factory */
        GEOSCoordSequence *seq = GEOSCoordSeq_create_r(h, 2, 2);
        GEOSCoordSeq_setXY_r(h, seq, 0, 0.0, 0.0);
        GEOSCoordSeq_setXY_r(h, seq, 1, 1.0, (double)i);
        GEOSGeometry *ring = GEOSGeom_createLinearRing_r(h, seq);
        if (ring == NULL) nulls++;
        else GEOSGeom_destroy_r(h, ring);
        /* real work: buffer two points, union, intersect, measure */
        GEOSGeometry *a = GEOSGeom_createPointFromXY_r(h, (double)i, 0.0);
        GEOSGeometry *b = GEOSGeom_createPointFromXY_r(h, (double)i + 1.0, 0.0);
        GEOSGeometry *ba = GEOSBuffer_r(h, a, 1.0, 16);
        GEOSGeometry *bb = GEOSBuffer_r(h, b, 1.0, 16);
        GEOSGeometry *u = GEOSUnion_r(h, ba, bb);
        GEOSGeometry *x = GEOSIntersection_r(h, ba, bb);
        double ua = 0.0, xa = 0.0;
        if (u && x && GEOSArea_r(h, u, &ua) && GEOSArea_r(h, x, &xa)) {
            unions++;
            area += ua + xa;
        }
        GEOSGeom_destroy_r(h, a); GEOSGeom_destroy_r(h, b);
        GEOSGeom_destroy_r(h, ba); GEOSGeom_destroy_r(h, bb);
        if (u) GEOSGeom_destroy_r(h, u);
        if (x) GEOSGeom_destroy_r(h, x);
    }
    GEOSWKTReader_destroy_r(h, reader);
    GEOS_finish_r(h);
    printf("geosstress %s: %d rounds, %d NULL results, %d ParseException, "
           "%d IllegalArgumentException, %d other errors, %d unions, area %.4f\n",
           GEOSversion(), rounds, nulls, parse_errors, argument_errors, other_errors, unions,
           area / rounds);
    return !(nulls == 2 * rounds && parse_errors == rounds && argument_errors == rounds
             && other_errors == 0 && unions == rounds);
}
