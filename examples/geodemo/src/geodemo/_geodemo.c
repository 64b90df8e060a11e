/*
 * _geodemo: a tiny extension that really calls PROJ, GEOS and SQLite.
 *
 * Built against the CPython stable ABI (Py_LIMITED_API is set by CMake's
 * python_add_library(... USE_SABI 3.9)), linked statically against the three
 * libraries. Every function runs with the GIL held, which also serialises use
 * of the one PROJ context below (PROJ contexts are not thread-safe).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <geos_c.h>
#include <proj.h>
#include <sqlite3.h>

/* ---------------------------------------------------------------- PROJ --- */

/* The context all PROJ calls use. It only exists once _set_data_dir() has
 * pointed it at the proj.db shipped in the wheel, so PROJ never reads the
 * system's data (nor PROJ_DATA / PROJ_LIB) and never goes to the network. */
static PJ_CONTEXT *g_ctx = NULL;
static PJ *g_to_mercator = NULL; /* EPSG:4326 -> EPSG:3857, lon/lat order */
static char *g_data_dir = NULL;
static char g_proj_log[512]; /* last PROJ error message, for exceptions */

static void
proj_logger(void *app_data, int level, const char *message)
{
    if (level <= PJ_LOG_ERROR && message)
        snprintf(g_proj_log, sizeof(g_proj_log), "%s", message);
}

static void
proj_state_clear(void)
{
    if (g_to_mercator) {
        proj_destroy(g_to_mercator);
        g_to_mercator = NULL;
    }
    if (g_ctx) {
        proj_context_destroy(g_ctx);
        g_ctx = NULL;
    }
    free(g_data_dir);
    g_data_dir = NULL;
}

static PyObject *
set_proj_error(const char *what)
{
    int err = proj_context_errno(g_ctx);
    const char *msg = g_proj_log[0] ? g_proj_log : proj_context_errno_string(g_ctx, err);
    PyErr_Format(PyExc_RuntimeError, "%s failed: %s (PROJ error %d, data dir '%s')",
                 what, msg ? msg : "unknown error", err,
                 g_data_dir ? g_data_dir : "");
    g_proj_log[0] = '\0';
    return NULL;
}

static PyObject *
geodemo_set_data_dir(PyObject *self, PyObject *args)
{
    const char *path;
    if (!PyArg_ParseTuple(args, "s:_set_data_dir", &path))
        return NULL;

    /* A fresh context, so nothing opened under an earlier path survives. */
    proj_state_clear();
    g_data_dir = strdup(path);
    g_ctx = proj_context_create();
    if (!g_data_dir || !g_ctx) {
        proj_state_clear();
        return PyErr_NoMemory();
    }
    proj_context_set_enable_network(g_ctx, 0);
    proj_log_func(g_ctx, NULL, proj_logger); /* errors go into exceptions, not stderr */
    const char *paths[1] = {g_data_dir};
    proj_context_set_search_paths(g_ctx, 1, paths);
    Py_RETURN_NONE;
}

static PJ_CONTEXT *
require_ctx(void)
{
    if (!g_ctx)
        PyErr_SetString(PyExc_RuntimeError,
                        "geodemo: PROJ data directory not set (import geodemo, "
                        "not geodemo._geodemo)");
    return g_ctx;
}

static PyObject *
geodemo_proj_db_path(PyObject *self, PyObject *noargs)
{
    if (!require_ctx())
        return NULL;
    g_proj_log[0] = '\0';
    const char *path = proj_context_get_database_path(g_ctx);
    if (!path)
        return set_proj_error("opening proj.db");
    return PyUnicode_DecodeFSDefault(path);
}

static PyObject *
geodemo_transform(PyObject *self, PyObject *args)
{
    double lon, lat;
    if (!PyArg_ParseTuple(args, "dd:transform", &lon, &lat))
        return NULL;
    if (!require_ctx())
        return NULL;

    if (!g_to_mercator) {
        g_proj_log[0] = '\0';
        PJ *op = proj_create_crs_to_crs(g_ctx, "EPSG:4326", "EPSG:3857", NULL);
        if (!op)
            return set_proj_error("proj_create_crs_to_crs(EPSG:4326, EPSG:3857)");
        /* EPSG:4326 is lat/lon; normalise to lon/lat (x/y) input order. */
        g_to_mercator = proj_normalize_for_visualization(g_ctx, op);
        proj_destroy(op);
        if (!g_to_mercator)
            return set_proj_error("proj_normalize_for_visualization");
    }

    proj_errno_reset(g_to_mercator);
    PJ_COORD out = proj_trans(g_to_mercator, PJ_FWD, proj_coord(lon, lat, 0, 0));
    int err = proj_errno(g_to_mercator);
    if (err || out.xy.x == HUGE_VAL || out.xy.y == HUGE_VAL) {
        const char *msg = proj_context_errno_string(g_ctx, err);
        PyErr_Format(PyExc_ValueError, "cannot transform (%R, %R): %s",
                     PyTuple_GetItem(args, 0), PyTuple_GetItem(args, 1),
                     (err && msg) ? msg : "coordinate out of range");
        return NULL;
    }
    return Py_BuildValue("(dd)", out.xy.x, out.xy.y);
}

static PyObject *
geodemo_proj_version(PyObject *self, PyObject *noargs)
{
    return PyUnicode_FromString(proj_info().version);
}

/* ---------------------------------------------------------------- GEOS --- */

typedef struct {
    char message[512];
} geos_error;

static void
geos_error_handler(const char *message, void *userdata)
{
    geos_error *err = (geos_error *)userdata;
    snprintf(err->message, sizeof(err->message), "%s", message);
}

static PyObject *
geodemo_buffer_area(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"x", "y", "radius", "quadsegs", NULL};
    double x, y, radius;
    int quadsegs = 8;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ddd|i:buffer_area", kwlist,
                                     &x, &y, &radius, &quadsegs))
        return NULL;
    if (quadsegs < 1) {
        PyErr_SetString(PyExc_ValueError, "quadsegs must be >= 1");
        return NULL;
    }

    /* Reentrant API: one handle per call, errors reported to our buffer. */
    geos_error err = {{0}};
    GEOSContextHandle_t h = GEOS_init_r();
    if (!h)
        return PyErr_NoMemory();
    GEOSContext_setErrorMessageHandler_r(h, geos_error_handler, &err);

    double area = 0.0;
    int ok = 0;
    GEOSGeometry *point = GEOSGeom_createPointFromXY_r(h, x, y);
    GEOSGeometry *buffered = point ? GEOSBuffer_r(h, point, radius, quadsegs) : NULL;
    if (buffered)
        ok = GEOSArea_r(h, buffered, &area);
    if (buffered)
        GEOSGeom_destroy_r(h, buffered);
    if (point)
        GEOSGeom_destroy_r(h, point);
    GEOS_finish_r(h);

    if (!ok) {
        PyErr_Format(PyExc_RuntimeError, "GEOS buffer/area failed: %s",
                     err.message[0] ? err.message : "unknown error");
        return NULL;
    }
    return PyFloat_FromDouble(area);
}

static PyObject *
geodemo_geos_version(PyObject *self, PyObject *noargs)
{
    return PyUnicode_FromString(GEOSversion());
}

/* -------------------------------------------------------------- SQLite --- */

static PyObject *
geodemo_sqlite_version(PyObject *self, PyObject *noargs)
{
    return PyUnicode_FromString(sqlite3_libversion());
}

static PyObject *
geodemo_sqlite_query(PyObject *self, PyObject *args)
{
    const char *sql;
    if (!PyArg_ParseTuple(args, "s:sqlite_query", &sql))
        return NULL;

    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    PyObject *result = NULL;

    int rc = sqlite3_open(":memory:", &db);
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_RuntimeError, "sqlite3_open(:memory:) failed: %s",
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto done;
    }
    rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK) {
        PyErr_Format(PyExc_ValueError, "SQL error: %s", sqlite3_errmsg(db));
        goto done;
    }
    if (!stmt) { /* empty statement */
        Py_INCREF(Py_None); /* Py_NewRef is not in the 3.9 limited API */
        result = Py_None;
        goto done;
    }
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
        const char *text = (const char *)sqlite3_column_text(stmt, 0);
        int size = sqlite3_column_bytes(stmt, 0);
        result = text ? PyUnicode_DecodeUTF8(text, size, "replace") : PyErr_NoMemory();
    }
    else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        Py_INCREF(Py_None);
        result = Py_None;
    }
    else {
        PyErr_Format(PyExc_RuntimeError, "SQL error: %s", sqlite3_errmsg(db));
    }

done:
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
}

/* -------------------------------------------------------------- module --- */

static PyMethodDef geodemo_methods[] = {
    {"_set_data_dir", geodemo_set_data_dir, METH_VARARGS,
     "_set_data_dir(path)\n--\n\nUse only `path` for PROJ data (proj.db); no network."},
    {"proj_db_path", geodemo_proj_db_path, METH_NOARGS,
     "proj_db_path()\n--\n\nPath of the proj.db PROJ actually opened."},
    {"transform", geodemo_transform, METH_VARARGS,
     "transform(lon, lat)\n--\n\nEPSG:4326 (lon, lat degrees) -> EPSG:3857 (x, y metres)."},
    {"proj_version", geodemo_proj_version, METH_NOARGS,
     "proj_version()\n--\n\nVersion of the linked PROJ."},
    {"buffer_area", (PyCFunction)(void (*)(void))geodemo_buffer_area,
     METH_VARARGS | METH_KEYWORDS,
     "buffer_area(x, y, radius, quadsegs=8)\n--\n\n"
     "Area of the GEOS buffer of point (x, y)."},
    {"geos_version", geodemo_geos_version, METH_NOARGS,
     "geos_version()\n--\n\nVersion of the linked GEOS."},
    {"sqlite_version", geodemo_sqlite_version, METH_NOARGS,
     "sqlite_version()\n--\n\nVersion of the linked SQLite."},
    {"sqlite_query", geodemo_sqlite_query, METH_VARARGS,
     "sqlite_query(sql)\n--\n\n"
     "Run `sql` on an in-memory database; first column of the first row as str "
     "(None if there is none)."},
    {NULL, NULL, 0, NULL},
};

static void
geodemo_free(void *module)
{
    proj_state_clear();
}

static struct PyModuleDef geodemo_module = {
    PyModuleDef_HEAD_INIT,
    "_geodemo",
    "PROJ, GEOS and SQLite, statically linked (geonox demo).",
    -1,
    geodemo_methods,
    NULL,
    NULL,
    NULL,
    geodemo_free,
};

PyMODINIT_FUNC
PyInit__geodemo(void)
{
    return PyModule_Create(&geodemo_module);
}
